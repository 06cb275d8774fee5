//! The embedded etcd (`k1s server --cluster-init`, k3s's "HA with embedded etcd").
//!
//! Rust has no embeddable etcd, so k1s runs Debian's `etcd` binary as a child process and
//! restarts it when it exits, as it supervises containerd. Files (k3s's layout):
//!
//! ```text
//! <data-dir>/server/db/etcd/           etcd's data dir (member/)
//! <data-dir>/server/db/etcd-member.json this member's name and URLs (for restarts and
//!                                      `k1s etcd-snapshot`)
//! <data-dir>/server/db/etcd.log        etcd's own log
//! <data-dir>/server/db/snapshots/      `k1s etcd-snapshot save`
//! <data-dir>/server/tls/etcd/          the etcd CAs and certificates (k1s_pki::EtcdTlsFiles)
//! ```
//!
//! Joining (`k1s server --server URL --token K10…`): the new server checks the first one's
//! CA against the token's hash (as agents do), reads the Secret
//! `kube-system/k1s-server-bootstrap` with the bootstrap token derived from the token —
//! the cluster's CAs and signing keys sealed with the token's secret
//! ([`k1s_pki::seal`]) — writes them into its data dir, adds itself to the etcd cluster
//! (`MemberAdd`) and starts its etcd with `--initial-cluster-state=existing`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use k1s_pki::EtcdTlsFiles;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::json;

use crate::cli::etcd::EmbeddedEtcdArgs;

/// Namespace and name of the Secret that holds the sealed bootstrap data.
const BOOTSTRAP_SECRET: (&str, &str) = ("kube-system", "k1s-server-bootstrap");
/// The files (under `<data-dir>/server/`) every server of a cluster shares: the CAs and
/// signing keys, and the key that encrypts Secrets at rest. Leaf certificates are each
/// server's own, issued from these.
const SHARED_FILES: &[&str] = &[
    "tls/ca.crt",
    "tls/ca.key",
    "tls/service-account.key",
    "tls/request-header-ca.crt",
    "tls/request-header-ca.key",
    "tls/etcd/server-ca.crt",
    "tls/etcd/server-ca.key",
    "tls/etcd/peer-ca.crt",
    "tls/etcd/peer-ca.key",
    "cred/encryption-config.json",
];
/// How long etcd may take to answer after it starts (a joining member first catches up).
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// `<data-dir>/server/db`.
fn db_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("server").join("db")
}

/// etcd's data dir.
pub(crate) fn etcd_dir(data_dir: &Path) -> PathBuf {
    db_dir(data_dir).join("etcd")
}

/// Whether this data dir already holds an etcd member (a restart, not a first start).
pub(crate) fn has_member(data_dir: &Path) -> bool {
    etcd_dir(data_dir).join("member").is_dir()
}

/// What etcd logs when it finds its member removed from the cluster.
const REMOVED_MESSAGE: &str = "the member has been permanently removed from the cluster";

/// k3s's marker of a member removed from the cluster: `<data-dir>/server/db/etcd/tombstone`.
fn tombstone_path(data_dir: &Path) -> PathBuf {
    etcd_dir(data_dir).join("tombstone")
}

fn write_tombstone(data_dir: &Path) {
    let path = tombstone_path(data_dir);
    if let Err(e) = std::fs::write(&path, b"") {
        tracing::error!(path = %path.display(), error = %e, "cannot write the tombstone of the removed etcd member");
    }
}

fn removed_advice(data_dir: &Path) -> String {
    format!(
        "this server's etcd member was removed from the cluster (its Node was deleted, or `k1s etcd member remove`); start k1s again with --server URL and --token of a remaining server to join again as a new member (its old data is then moved to {}/etcd-old-<time>)",
        db_dir(data_dir).display()
    )
}

/// At a start: when this data dir's member was removed from its cluster (a tombstone, as
/// k3s leaves), moves its etcd data aside and forgets its name, so the server joins
/// again as a new member; that needs `--server` (`joining`), as a new cluster would split
/// the old one. Returns where the old data went.
pub(crate) fn clear_tombstone(data_dir: &Path, joining: bool) -> anyhow::Result<Option<PathBuf>> {
    if !tombstone_path(data_dir).exists() {
        return Ok(None);
    }
    if !joining {
        bail!("{}", removed_advice(data_dir));
    }
    let dir = etcd_dir(data_dir);
    let old = db_dir(data_dir).join(format!("etcd-old-{}", jiff::Timestamp::now().as_second()));
    std::fs::rename(&dir, &old)
        .with_context(|| format!("cannot move the removed member's {} aside", dir.display()))?;
    match std::fs::remove_file(MemberConfig::path(data_dir)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(e).context("cannot forget the removed member's name");
        }
        _ => {}
    }
    tracing::info!(old = %old.display(), "this server's etcd member was removed from the cluster: joining again as a new member");
    Ok(Some(old))
}

/// The snapshot dir: `--etcd-snapshot-dir` or `<data-dir>/server/db/snapshots`.
pub(crate) fn snapshot_dir(data_dir: &Path, flag: Option<&Path>) -> PathBuf {
    flag.map(Path::to_path_buf)
        .unwrap_or_else(|| db_dir(data_dir).join("snapshots"))
}

/// This member's name and URLs, kept in `<data-dir>/server/db/etcd-member.json`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct MemberConfig {
    /// The etcd member name (`<node>-<8 hex>`, as k3s names members).
    pub name: String,
    /// The node name, for snapshot names.
    pub node_name: String,
    /// `https://127.0.0.1:<client port>`: where k1s and `k1s etcd-snapshot` reach it.
    pub local_client_url: String,
    /// `https://<node ip>:<client port>`: what other servers reach it at.
    pub client_url: String,
    /// `https://<node ip>:<peer port>`.
    pub peer_url: String,
}

impl MemberConfig {
    fn path(data_dir: &Path) -> PathBuf {
        db_dir(data_dir).join("etcd-member.json")
    }

    /// Reads the stored configuration of a data dir's member.
    pub(crate) fn load(data_dir: &Path) -> anyhow::Result<MemberConfig> {
        let path = Self::path(data_dir);
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "no embedded etcd in {} (cannot read {}): is this the data dir of a server started with --cluster-init?",
                data_dir.display(),
                path.display()
            )
        })?;
        serde_json::from_str(&text).with_context(|| format!("invalid {}", path.display()))
    }

    fn save(&self, data_dir: &Path) -> anyhow::Result<()> {
        let path = Self::path(data_dir);
        let text = serde_json::to_string_pretty(self)?;
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))
    }

    /// The stored configuration, with the ports and address of this start; the name is
    /// kept, or made once.
    fn settle(
        data_dir: &Path,
        node_name: &str,
        node_ip: std::net::IpAddr,
        args: &EmbeddedEtcdArgs,
    ) -> anyhow::Result<MemberConfig> {
        let name = match Self::load(data_dir) {
            Ok(c) => c.name,
            Err(_) => format!(
                "{node_name}-{}",
                &uuid::Uuid::new_v4().simple().to_string()[..8]
            ),
        };
        let host = match node_ip {
            std::net::IpAddr::V6(ip) => format!("[{ip}]"),
            std::net::IpAddr::V4(ip) => ip.to_string(),
        };
        let config = MemberConfig {
            name,
            node_name: node_name.to_string(),
            local_client_url: format!("https://127.0.0.1:{}", args.etcd_client_port),
            client_url: format!("https://{host}:{}", args.etcd_client_port),
            peer_url: format!("https://{host}:{}", args.etcd_peer_port),
        };
        std::fs::create_dir_all(db_dir(data_dir))
            .with_context(|| format!("cannot create {}", db_dir(data_dir).display()))?;
        config.save(data_dir)?;
        Ok(config)
    }
}

/// The etcd binary: `--etcd-binary`, else `etcd` on the PATH, else a clear error.
fn find_binary(flag: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(p) = flag {
        if p.is_file() {
            return Ok(p.to_path_buf());
        }
        bail!("--etcd-binary {} does not exist", p.display());
    }
    find_on_path("etcd").context(
        "the embedded etcd needs the etcd binary, which is not on the PATH: apt-get install etcd-server (or give --etcd-binary)",
    )
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/local/bin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// An etcd client of the local member, with k1s's client certificate.
pub(crate) async fn client(
    endpoints: &[String],
    tls: &EtcdTlsFiles,
) -> anyhow::Result<etcd_client::Client> {
    let read = |p: &Path| std::fs::read(p).with_context(|| format!("cannot read {}", p.display()));
    let options = etcd_client::ConnectOptions::new()
        .with_connect_timeout(Duration::from_secs(5))
        .with_timeout(Duration::from_secs(30))
        .with_tls(
            etcd_client::TlsOptions::new()
                .ca_certificate(etcd_client::Certificate::from_pem(read(&tls.server_ca)?))
                .identity(etcd_client::Identity::from_pem(
                    read(&tls.client_cert)?,
                    read(&tls.client_key)?,
                )),
        );
    etcd_client::Client::connect(endpoints, Some(options))
        .await
        .with_context(|| format!("cannot reach etcd at {}", endpoints.join(",")))
}

/// The local member of a data dir, for `k1s etcd-snapshot` and `k1s etcd member`.
pub(crate) async fn local_client(data_dir: &Path) -> anyhow::Result<etcd_client::Client> {
    let config = MemberConfig::load(data_dir)?;
    client(
        std::slice::from_ref(&config.local_client_url),
        &EtcdTlsFiles::paths(data_dir),
    )
    .await
}

/// A supervised etcd member.
pub(crate) struct Embedded {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
    /// Its local client URL (`https://127.0.0.1:<port>`), the datastore endpoint.
    pub local_client_url: String,
    /// Its client URL on the node IP, which joining servers reach.
    pub client_url: String,
    /// Its name and address, which this server's Node is marked with.
    pub member: super::etcd_members::LocalMember,
}

impl Embedded {
    /// Stops etcd (SIGTERM, then SIGKILL after 10 s).
    pub(crate) async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// How etcd is started this time.
struct Launch {
    binary: PathBuf,
    args: Vec<String>,
    log: PathBuf,
    data_dir: PathBuf,
    /// Where the log of the latest start begins.
    log_start: std::sync::atomic::AtomicU64,
}

impl Launch {
    fn new(
        binary: PathBuf,
        data_dir: &Path,
        member: &MemberConfig,
        tls: &EtcdTlsFiles,
        initial_cluster: &str,
        state: &str,
    ) -> Launch {
        let mut listen_client = vec![member.local_client_url.clone()];
        if member.client_url != member.local_client_url {
            listen_client.push(member.client_url.clone());
        }
        let p = |p: &Path| p.to_string_lossy().into_owned();
        let args = vec![
            format!("--name={}", member.name),
            format!("--data-dir={}", etcd_dir(data_dir).display()),
            format!("--listen-client-urls={}", listen_client.join(",")),
            format!("--advertise-client-urls={}", member.client_url),
            format!("--listen-peer-urls={}", member.peer_url),
            format!("--initial-advertise-peer-urls={}", member.peer_url),
            format!("--initial-cluster={initial_cluster}"),
            format!("--initial-cluster-state={state}"),
            format!("--cert-file={}", p(&tls.server_cert)),
            format!("--key-file={}", p(&tls.server_key)),
            format!("--trusted-ca-file={}", p(&tls.server_ca)),
            "--client-cert-auth=true".into(),
            format!("--peer-cert-file={}", p(&tls.peer_cert)),
            format!("--peer-key-file={}", p(&tls.peer_key)),
            format!("--peer-trusted-ca-file={}", p(&tls.peer_ca)),
            "--peer-client-cert-auth=true".into(),
            "--logger=zap".into(),
            "--log-outputs=stderr".into(),
        ];
        Launch {
            binary,
            args,
            log: db_dir(data_dir).join("etcd.log"),
            data_dir: data_dir.to_path_buf(),
            log_start: std::sync::atomic::AtomicU64::new(0),
        }
    }

    fn spawn(&self, extra: &[&str]) -> anyhow::Result<tokio::process::Child> {
        kill_orphans(&self.data_dir);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .with_context(|| format!("cannot open {}", self.log.display()))?;
        let start = log.metadata().map(|m| m.len()).unwrap_or(0);
        self.log_start
            .store(start, std::sync::atomic::Ordering::Relaxed);
        tokio::process::Command::new(&self.binary)
            .args(&self.args)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {}", self.binary.display()))
    }

    /// Whether the latest start's etcd said its member was removed from the cluster (its
    /// Node deleted, or `k1s etcd member remove`): it then exits, and cannot start again
    /// on this data.
    fn member_removed(&self) -> bool {
        use std::io::{Read, Seek};
        let start = self.log_start.load(std::sync::atomic::Ordering::Relaxed);
        let mut text = String::new();
        std::fs::File::open(&self.log)
            .and_then(|mut f| {
                f.seek(std::io::SeekFrom::Start(start))?;
                f.read_to_string(&mut text)
            })
            .is_ok()
            && text.contains(REMOVED_MESSAGE)
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(5)..].join("\n")
    }
}

/// The etcd processes running on this data dir's member.
pub(crate) fn running_members(data_dir: &Path) -> Vec<i32> {
    let flag = format!("--data-dir={}", etcd_dir(data_dir).display());
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut pids = Vec::new();
    for p in procs.flatten() {
        let Ok(pid) = p.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let cmdline = std::fs::read(p.path().join("cmdline")).unwrap_or_default();
        let mut parts = cmdline.split(|b| *b == 0);
        let is_etcd = parts.next().map(|a| a.ends_with(b"etcd")).unwrap_or(false);
        if is_etcd && parts.any(|a| a == flag.as_bytes()) {
            pids.push(pid);
        }
    }
    pids
}

/// Whether a process's parent is a running `k1s` (the server supervising that etcd); an
/// etcd whose k1s was killed has been handed to init or a subreaper.
pub(crate) fn supervised_by_k1s(pid: i32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // `pid (comm) state ppid …`: comm may hold spaces, so read after its closing bracket.
    let ppid = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(1))
        .and_then(|p| p.parse::<i32>().ok());
    ppid.is_some_and(|ppid| {
        std::fs::read_to_string(format!("/proc/{ppid}/comm")).is_ok_and(|c| c.trim() == "k1s")
    })
}

/// An etcd left running by a k1s that was killed (SIGKILL gives it no chance to stop its
/// child) holds the data dir's lock and the ports: it is stopped before a new one starts.
pub(crate) fn kill_orphans(data_dir: &Path) {
    for pid in running_members(data_dir) {
        tracing::warn!(pid, "stopping an etcd left running on this data dir");
        let pid = nix::unistd::Pid::from_raw(pid);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        for _ in 0..50 {
            if nix::sys::signal::kill(pid, None).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Waits until the member answers with a leader, or says why not.
async fn wait_healthy(
    child: &mut tokio::process::Child,
    launch: &Launch,
    url: &str,
    tls: &EtcdTlsFiles,
) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            if launch.member_removed() {
                write_tombstone(&launch.data_dir);
                bail!("{}", removed_advice(&launch.data_dir));
            }
            bail!(
                "etcd exited with {status} (log: {}):\n{}",
                launch.log.display(),
                launch.log_tail()
            );
        }
        let last = match client(&[url.to_string()], tls).await {
            Ok(mut c) => match c.status().await {
                Ok(s) if s.leader() != 0 => return Ok(()),
                Ok(_) => "no leader yet".to_string(),
                Err(e) => e.to_string(),
            },
            Err(e) => format!("{e:#}"),
        };
        if started.elapsed() > START_TIMEOUT {
            bail!(
                "etcd did not become ready within {START_TIMEOUT:?} ({last}; log: {})",
                launch.log.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Runs `child` and restarts etcd when it exits, until stopped.
fn supervise(
    launch: Launch,
    mut child: tokio::process::Child,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        loop {
            tokio::select! {
                status = child.wait() => {
                    if launch.member_removed() {
                        write_tombstone(&launch.data_dir);
                        tracing::error!("{}", removed_advice(&launch.data_dir));
                        return;
                    }
                    tracing::error!(status = ?status.ok(), log = %launch.log.display(), "etcd exited; restarting it");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    match launch.spawn(&[]) {
                        Ok(c) => child = c,
                        Err(e) => {
                            tracing::error!(error = %e, "cannot restart etcd");
                            return;
                        }
                    }
                }
                _ = &mut stopped => {
                    terminate(&mut child).await;
                    return;
                }
            }
        }
    });
    (stop, task)
}

/// SIGTERM, then SIGKILL after 10 s.
async fn terminate(child: &mut tokio::process::Child) {
    if let Some(pid) = child.id() {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
    if tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .is_err()
    {
        let _ = child.kill().await;
    }
}

/// What `k1s server` does with the embedded etcd this time.
pub(crate) struct Plan<'a> {
    /// The flags.
    pub args: &'a EmbeddedEtcdArgs,
    /// The data dir.
    pub data_dir: &'a Path,
    /// The node's name.
    pub node_name: &'a str,
    /// The address etcd serves peers and other servers on.
    pub node_ip: std::net::IpAddr,
    /// etcd endpoints of the cluster being joined (a first start with --server).
    pub join_endpoints: Option<Vec<String>>,
}

/// What a `--cluster-reset` did; k1s exits after it.
pub(crate) enum Started {
    /// etcd runs; k1s uses it as its datastore.
    Running(Box<(Embedded, EtcdTlsFiles)>),
    /// The membership was reset (and the data restored); k1s exits.
    Reset(String),
}

/// Starts (or joins, or resets) the embedded etcd member.
pub(crate) async fn start(plan: Plan<'_>) -> anyhow::Result<Started> {
    let binary = find_binary(plan.args.etcd_binary.as_deref())?;
    let tls = EtcdTlsFiles::load_or_create(plan.data_dir, plan.node_name, &[plan.node_ip])
        .context("cannot set up the etcd certificates")?;
    let member = MemberConfig::settle(plan.data_dir, plan.node_name, plan.node_ip, plan.args)?;
    let own = format!("{}={}", member.name, member.peer_url);

    if plan.args.cluster_reset {
        return reset(&binary, plan.data_dir, &member, &tls, plan.args).await;
    }

    let (initial_cluster, state) = match (&plan.join_endpoints, has_member(plan.data_dir)) {
        (Some(endpoints), false) => (add_member(endpoints, &tls, &member).await?, "existing"),
        _ => (own, "new"),
    };
    let launch = Launch::new(
        binary,
        plan.data_dir,
        &member,
        &tls,
        &initial_cluster,
        state,
    );
    let mut child = launch.spawn(&[])?;
    tracing::info!(name = %member.name, client = %member.client_url, peer = %member.peer_url, state, "started etcd");
    wait_healthy(&mut child, &launch, &member.local_client_url, &tls).await?;
    let (stop, task) = supervise(launch, child);
    Ok(Started::Running(Box::new((
        Embedded {
            stop,
            task,
            local_client_url: member.local_client_url,
            client_url: member.client_url,
            member: super::etcd_members::LocalMember {
                name: member.name,
                address: plan.node_ip.to_string(),
            },
        },
        tls,
    ))))
}

/// A client of the first of `endpoints` that lists the members, and the list: the
/// endpoints a joining server is given may name members since removed.
async fn first_answering(
    endpoints: &[String],
    tls: &EtcdTlsFiles,
) -> anyhow::Result<(etcd_client::Client, etcd_client::MemberListResponse)> {
    let mut last = anyhow::anyhow!("no etcd endpoint to join");
    for endpoint in endpoints {
        let mut c = match client(std::slice::from_ref(endpoint), tls).await {
            Ok(c) => c,
            Err(e) => {
                last = e;
                continue;
            }
        };
        match c.member_list().await {
            Ok(list) => return Ok((c, list)),
            Err(e) => {
                last = anyhow::Error::new(e)
                    .context(format!("cannot list the etcd members at {endpoint}"));
            }
        }
    }
    Err(last)
}

/// Adds this member to the cluster at `endpoints`; returns its `--initial-cluster`.
async fn add_member(
    endpoints: &[String],
    tls: &EtcdTlsFiles,
    member: &MemberConfig,
) -> anyhow::Result<String> {
    let (mut c, list) = first_answering(endpoints, tls).await?;
    // A member added by an earlier attempt that never started is replaced.
    for m in list.members() {
        if m.peer_urls().contains(&member.peer_url) {
            if !m.name().is_empty() && m.name() != member.name {
                bail!(
                    "the etcd member {} already uses the peer URL {}",
                    m.name(),
                    member.peer_url
                );
            }
            c.member_remove(m.id())
                .await
                .context("cannot remove this server's unstarted etcd member")?;
        }
    }
    let added = c
        .member_add([member.peer_url.as_str()], None)
        .await
        .with_context(|| format!("cannot add {} to the etcd cluster", member.peer_url))?;
    let id = added.member().map(|m| m.id()).unwrap_or_default();
    tracing::info!(name = %member.name, id = format!("{id:x}"), "added this server to the etcd cluster");
    let initial = added
        .member_list()
        .iter()
        .flat_map(|m| {
            let name = if m.id() == id {
                member.name.clone()
            } else {
                m.name().to_string()
            };
            m.peer_urls()
                .iter()
                .map(move |u| format!("{name}={u}"))
                .collect::<Vec<_>>()
        })
        .collect::<Vec<_>>()
        .join(",");
    Ok(initial)
}

/// `--cluster-reset` (with `--cluster-reset-restore-path`): k3s's reset and restore.
async fn reset(
    binary: &Path,
    data_dir: &Path,
    member: &MemberConfig,
    tls: &EtcdTlsFiles,
    args: &EmbeddedEtcdArgs,
) -> anyhow::Result<Started> {
    let own = format!("{}={}", member.name, member.peer_url);
    if let Some(snapshot) = &args.cluster_reset_restore_path {
        if !snapshot.is_file() {
            bail!(
                "--cluster-reset-restore-path {}: no such file",
                snapshot.display()
            );
        }
        restore_snapshot(data_dir, member, snapshot).await?;
        return Ok(Started::Reset(format!(
            "restored the etcd snapshot {} as the sole member {}; start k1s again without --cluster-reset, and join the other servers again with empty data dirs",
            snapshot.display(),
            member.name
        )));
    }
    if !has_member(data_dir) {
        bail!(
            "--cluster-reset: no etcd data in {}",
            etcd_dir(data_dir).display()
        );
    }
    let launch = Launch::new(binary.to_path_buf(), data_dir, member, tls, &own, "new");
    let mut child = launch.spawn(&["--force-new-cluster"])?;
    let ready = wait_healthy(&mut child, &launch, &member.local_client_url, tls).await;
    terminate(&mut child).await;
    ready?;
    // The sole member of a new cluster is no longer a removed one.
    let _ = std::fs::remove_file(tombstone_path(data_dir));
    Ok(Started::Reset(format!(
        "the etcd cluster membership was reset: {} is its sole member; start k1s again without --cluster-reset, and join the other servers again with empty data dirs",
        member.name
    )))
}

/// Replaces the member's data by `snapshot` (`etcdctl snapshot restore`), as the sole member
/// of a new cluster under its own name and peer URL; the old data is moved to
/// `<data-dir>/server/db/etcd-old-<unix time>`, which is returned (`None` when there was
/// none). etcd must not be running on the data dir.
pub(crate) async fn restore_snapshot(
    data_dir: &Path,
    member: &MemberConfig,
    snapshot: &Path,
) -> anyhow::Result<Option<PathBuf>> {
    let etcdctl = find_on_path("etcdctl").context(
        "restoring a snapshot needs etcdctl, which is not on the PATH: apt-get install etcd-client",
    )?;
    let dir = etcd_dir(data_dir);
    let mut moved = None;
    if dir.exists() {
        let old = db_dir(data_dir).join(format!("etcd-old-{}", jiff::Timestamp::now().as_second()));
        std::fs::rename(&dir, &old)
            .with_context(|| format!("cannot move {} aside", dir.display()))?;
        tracing::info!(old = %old.display(), "moved the etcd data aside");
        moved = Some(old);
    }
    let out = tokio::process::Command::new(&etcdctl)
        .env("ETCDCTL_API", "3")
        .arg("snapshot")
        .arg("restore")
        .arg(snapshot)
        .arg(format!("--name={}", member.name))
        .arg(format!("--data-dir={}", dir.display()))
        .arg(format!(
            "--initial-cluster={}={}",
            member.name, member.peer_url
        ))
        .arg(format!("--initial-advertise-peer-urls={}", member.peer_url))
        .output()
        .await
        .with_context(|| format!("cannot run {}", etcdctl.display()))?;
    if !out.status.success() {
        bail!(
            "etcdctl snapshot restore {} failed: {}",
            snapshot.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(moved)
}

/// Files of the bootstrap data, keyed by their path under `<data-dir>/server/`.
type BootstrapFiles = BTreeMap<String, String>;

fn read_shared_files(data_dir: &Path) -> anyhow::Result<BootstrapFiles> {
    use base64::Engine as _;
    let server = data_dir.join("server");
    let mut files = BootstrapFiles::new();
    for rel in SHARED_FILES {
        let path = server.join(rel);
        match std::fs::read(&path) {
            Ok(bytes) => {
                files.insert(
                    rel.to_string(),
                    base64::engine::general_purpose::STANDARD.encode(bytes),
                );
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }
    Ok(files)
}

/// Writes the fetched shared files into a joining server's data dir; a file already there
/// must be the same (a data dir of another cluster is refused).
pub(crate) fn write_bootstrap(data_dir: &Path, files: &BootstrapFiles) -> anyhow::Result<()> {
    use base64::Engine as _;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let server = data_dir.join("server");
    for (rel, b64) in files {
        if !SHARED_FILES.contains(&rel.as_str()) {
            bail!("the bootstrap data names an unexpected file {rel:?}");
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .with_context(|| format!("the bootstrap data's {rel} is not base64"))?;
        let path = server.join(rel);
        match std::fs::read(&path) {
            Ok(existing) if existing == bytes => continue,
            Ok(_) => bail!(
                "{} belongs to another cluster: give a fresh --data-dir to join {}",
                path.display(),
                "this one"
            ),
            Err(_) => {}
        }
        if let Some(parent) = path.parent() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        std::io::Write::write_all(&mut f, &bytes)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

/// Keeps the sealed bootstrap data and this cluster's etcd client URLs in the Secret
/// joining servers read, readable by the join token's bootstrap group only.
pub(crate) async fn publish_bootstrap(
    client: kube::Client,
    data_dir: &Path,
    token_secret: &str,
    etcd_endpoints: &[String],
) -> anyhow::Result<()> {
    let files = read_shared_files(data_dir)?;
    let plain = serde_json::to_vec(&json!({ "files": files }))?;
    let sealed = k1s_pki::seal::seal(token_secret, &plain)?;
    let (ns, name) = BOOTSTRAP_SECRET;
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(ns.into()),
            ..ObjectMeta::default()
        },
        type_: Some("Opaque".into()),
        data: Some(
            [
                ("bootstrap".to_string(), ByteString(sealed)),
                (
                    "etcd-endpoints".to_string(),
                    ByteString(etcd_endpoints.join(",").into_bytes()),
                ),
            ]
            .into(),
        ),
        ..Secret::default()
    };
    let params = PatchParams::apply("k1s-etcd").force();
    Api::<Secret>::namespaced(client.clone(), ns)
        .patch(name, &params, &Patch::Apply(&secret))
        .await
        .with_context(|| format!("cannot write {ns}/{name}"))?;
    super::join::grant_get(
        client,
        "k1s-etcd",
        ns,
        "k1s:server-bootstrap-reader",
        ("secrets", name),
        super::join::Reader {
            kind: "Group",
            name: super::join::BOOTSTRAP_GROUP,
        },
    )
    .await
}

/// What a joining server fetched from the cluster.
pub(crate) struct Bootstrap {
    /// The shared files.
    pub files: BootstrapFiles,
    /// Client URLs of the cluster's etcd members.
    pub etcd_endpoints: Vec<String>,
}

/// Fetches and opens the bootstrap data from the server at `server`, whose CA must match
/// the token's hash.
pub(crate) async fn fetch_bootstrap(server: &str, token: &str) -> anyhow::Result<Bootstrap> {
    let parsed = k1s_pki::parse_token(token)
        .context("invalid --token: expected K10<ca hash>::server:<secret> or the bare secret")?;
    let ca_pem = super::bootstrap::discover_ca(server, parsed.ca_hash.as_deref()).await?;
    let (id, secret) = k1s_pki::bootstrap_token(&parsed.secret);
    let client = super::bootstrap::token_client(server, &ca_pem, &format!("{id}.{secret}")).await?;
    let (ns, name) = BOOTSTRAP_SECRET;
    let found = Api::<Secret>::namespaced(client, ns)
        .get(name)
        .await
        .with_context(|| {
            format!(
                "cannot read {ns}/{name} from {server} (is the token right, and does that server run the embedded etcd, --cluster-init?)"
            )
        })?;
    let data = found.data.unwrap_or_default();
    let sealed = data
        .get("bootstrap")
        .with_context(|| format!("{ns}/{name} has no bootstrap data"))?;
    let plain = k1s_pki::seal::open(&parsed.secret, &sealed.0)?;
    #[derive(serde::Deserialize)]
    struct Data {
        files: BootstrapFiles,
    }
    let opened: Data = serde_json::from_slice(&plain).context("invalid bootstrap data")?;
    let etcd_endpoints: Vec<String> = data
        .get("etcd-endpoints")
        .map(|b| String::from_utf8_lossy(&b.0).into_owned())
        .unwrap_or_default()
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    if etcd_endpoints.is_empty() {
        bail!("{ns}/{name} lists no etcd endpoint");
    }
    Ok(Bootstrap {
        files: opened.files,
        etcd_endpoints,
    })
}

/// The client URLs of every started member, for joining servers.
pub(crate) async fn member_client_urls(
    local_url: &str,
    tls: &EtcdTlsFiles,
) -> anyhow::Result<Vec<String>> {
    let mut c = client(&[local_url.to_string()], tls).await?;
    let list = c.member_list().await.context("cannot list etcd members")?;
    Ok(list
        .members()
        .iter()
        .flat_map(|m| m.client_urls().to_vec())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_removed_member_joins_again_only_with_a_server_to_join() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path();
        // No tombstone: nothing happens.
        assert_eq!(clear_tombstone(data, false).unwrap(), None);
        std::fs::create_dir_all(etcd_dir(data).join("member")).unwrap();
        let member = MemberConfig {
            name: "n1-0a1b2c3d".into(),
            node_name: "n1".into(),
            local_client_url: "https://127.0.0.1:2379".into(),
            client_url: "https://10.0.0.1:2379".into(),
            peer_url: "https://10.0.0.1:2380".into(),
        };
        member.save(data).unwrap();
        write_tombstone(data);
        // Without --server it would start a cluster of its own: refused, data kept.
        let refused = clear_tombstone(data, false).unwrap_err().to_string();
        assert!(refused.contains("--server"), "{refused}");
        assert!(has_member(data));
        // With it: the data moves aside, the name is forgotten, and a join follows.
        let old = clear_tombstone(data, true).unwrap().unwrap();
        assert!(old.join("member").is_dir() && old.join("tombstone").is_file());
        assert!(!has_member(data));
        assert!(MemberConfig::load(data).is_err());
        assert_eq!(clear_tombstone(data, true).unwrap(), None);
    }

    #[test]
    fn bootstrap_files_round_trip_and_refuse_another_cluster() {
        let from = tempfile::tempdir().unwrap();
        let to = tempfile::tempdir().unwrap();
        let tls = from.path().join("server").join("tls");
        std::fs::create_dir_all(tls.join("etcd")).unwrap();
        std::fs::write(tls.join("ca.crt"), "ca").unwrap();
        std::fs::write(tls.join("etcd").join("peer-ca.key"), "peer").unwrap();
        let files = read_shared_files(from.path()).unwrap();
        assert_eq!(files.len(), 2);
        write_bootstrap(to.path(), &files).unwrap();
        let got = to.path().join("server").join("tls");
        assert_eq!(std::fs::read_to_string(got.join("ca.crt")).unwrap(), "ca");
        assert_eq!(
            std::fs::read_to_string(got.join("etcd").join("peer-ca.key")).unwrap(),
            "peer"
        );
        // Again: the same files are fine.
        write_bootstrap(to.path(), &files).unwrap();
        // Another cluster's CA is refused, not overwritten.
        std::fs::write(got.join("ca.crt"), "other").unwrap();
        assert!(write_bootstrap(to.path(), &files).is_err());
        // Only the shared files may be written.
        let mut bad = BootstrapFiles::new();
        bad.insert("../../etc/passwd".into(), String::new());
        assert!(write_bootstrap(to.path(), &bad).is_err());
    }
}

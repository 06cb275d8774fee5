//! `k1s etcd-snapshot save|ls|delete` (k3s's) and `k1s etcd member list|remove`: clients
//! of a running server's embedded etcd, found through its data dir; `k1s etcd-snapshot
//! restore`, on a stopped server's.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};

use crate::cli::etcd::{
    EtcdArgs, EtcdCommand, EtcdSnapshotArgs, EtcdSnapshotCommand, LocalEtcd, MemberCommand,
};

use super::etcd::{
    MemberConfig, kill_orphans, local_client, running_members, snapshot_dir, supervised_by_k1s,
};

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn data_dir(local: &LocalEtcd) -> PathBuf {
    local
        .data_dir
        .clone()
        .unwrap_or_else(super::server::default_data_dir)
}

/// Runs `k1s etcd-snapshot`.
pub fn run_snapshot(args: EtcdSnapshotArgs) -> anyhow::Result<ExitCode> {
    let rt = runtime()?;
    match args.command {
        EtcdSnapshotCommand::Save(save) => {
            let dir = data_dir(&save.local);
            let path = rt.block_on(save_snapshot(
                &dir,
                &snapshot_dir(&dir, save.local.etcd_snapshot_dir.as_deref()),
                &save.name,
            ))?;
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            println!("Snapshot {name} saved.");
        }
        EtcdSnapshotCommand::Ls(local) => {
            let dir = data_dir(&local);
            let snapshots = list(&snapshot_dir(&dir, local.etcd_snapshot_dir.as_deref()))?;
            print!("{}", table(&snapshots));
        }
        EtcdSnapshotCommand::Delete(del) => {
            let dir = data_dir(&del.local);
            let snaps = snapshot_dir(&dir, del.local.etcd_snapshot_dir.as_deref());
            for name in &del.names {
                if name.is_empty() || name.contains('/') || name == "." || name == ".." {
                    bail!("invalid snapshot name {name:?}");
                }
                let path = snaps.join(name);
                std::fs::remove_file(&path)
                    .with_context(|| format!("cannot delete snapshot {name}"))?;
                println!("Snapshot {name} deleted.");
            }
        }
        EtcdSnapshotCommand::Restore(restore) => {
            let dir = data_dir(&restore.local);
            let snaps = snapshot_dir(&dir, restore.local.etcd_snapshot_dir.as_deref());
            let message = rt.block_on(restore_snapshot(&dir, &snaps, &restore.snapshot))?;
            println!("{message}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The snapshot a `restore` names: a file in the snapshot dir, else a path.
fn find_snapshot(snapshots: &Path, wanted: &str) -> anyhow::Result<PathBuf> {
    let is_name = !wanted.is_empty() && !wanted.contains('/') && wanted != "." && wanted != "..";
    if is_name && snapshots.join(wanted).is_file() {
        return Ok(snapshots.join(wanted));
    }
    let path = Path::new(wanted);
    if !is_name && path.is_file() {
        return Ok(path.to_path_buf());
    }
    bail!(
        "no snapshot {wanted:?} in {} (see `k1s etcd-snapshot ls`), nor such a file",
        snapshots.display()
    )
}

/// `k1s etcd-snapshot restore`: what `k1s server --cluster-reset
/// --cluster-reset-restore-path` does, on a stopped server; returns what to do next.
async fn restore_snapshot(
    data_dir: &Path,
    snapshots: &Path,
    wanted: &str,
) -> anyhow::Result<String> {
    let config = MemberConfig::load(data_dir)?;
    let snapshot = find_snapshot(snapshots, wanted)?;
    let running = running_members(data_dir);
    let supervised: Vec<i32> = running
        .iter()
        .copied()
        .filter(|pid| supervised_by_k1s(*pid))
        .collect();
    if !supervised.is_empty() {
        bail!(
            "etcd is running on {} (pid {supervised:?}): stop the k1s server first (e.g. systemctl stop k1s), then restore",
            data_dir.display()
        );
    }
    // An etcd no k1s supervises any more (its server was killed) is stopped, as a server
    // start stops it.
    kill_orphans(data_dir);
    let old = super::etcd::restore_snapshot(data_dir, &config, &snapshot).await?;
    let kept = old
        .map(|o| format!(" (the previous data is in {})", o.display()))
        .unwrap_or_default();
    Ok(format!(
        "Snapshot {} restored: {} is the sole member of a new etcd cluster{kept}. Start `k1s server` again (without --cluster-reset); on each other server, stop k1s, remove its <data-dir>/server/db and start it again to rejoin.",
        snapshot.display(),
        config.name
    ))
}

/// Streams a snapshot of the local member into `<dir>/<name>-<node>-<unix time>`.
pub(crate) async fn save_snapshot(
    data_dir: &Path,
    dir: &Path,
    name: &str,
) -> anyhow::Result<PathBuf> {
    if name.is_empty() || name.contains('/') {
        bail!("invalid --name {name:?}");
    }
    let config = MemberConfig::load(data_dir)?;
    let mut client = local_client(data_dir).await?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let file_name = format!(
        "{name}-{}-{}",
        config.node_name,
        jiff::Timestamp::now().as_second()
    );
    let path = dir.join(&file_name);
    let partial = dir.join(format!(".{file_name}.part"));
    let mut out = std::fs::File::create(&partial)
        .with_context(|| format!("cannot create {}", partial.display()))?;
    let mut stream = client
        .snapshot()
        .await
        .context("etcd refused the snapshot")?;
    while let Some(chunk) = stream
        .message()
        .await
        .context("the snapshot stream broke")?
    {
        out.write_all(chunk.blob())
            .with_context(|| format!("cannot write {}", partial.display()))?;
    }
    out.sync_all()
        .with_context(|| format!("cannot write {}", partial.display()))?;
    std::fs::rename(&partial, &path)
        .with_context(|| format!("cannot move the snapshot to {}", path.display()))?;
    Ok(path)
}

/// Deletes the oldest snapshots named `<prefix>-…` beyond the newest `keep`.
pub(crate) fn prune(dir: &Path, prefix: &str, keep: usize) -> anyhow::Result<Vec<String>> {
    let mut ours: Vec<Snapshot> = list(dir)?
        .into_iter()
        .filter(|s| {
            s.name
                .strip_prefix(prefix)
                .and_then(|rest| rest.strip_prefix('-'))
                .is_some_and(|time| time.parse::<u64>().is_ok())
        })
        .collect();
    // Newest first, by the unix time in the name.
    let time = |s: &Snapshot| {
        s.name
            .rsplit_once('-')
            .and_then(|(_, t)| t.parse::<u64>().ok())
            .unwrap_or(0)
    };
    ours.sort_by_key(|s| std::cmp::Reverse(time(s)));
    let mut deleted = Vec::new();
    for s in ours.into_iter().skip(keep) {
        std::fs::remove_file(&s.path)
            .with_context(|| format!("cannot delete snapshot {}", s.name))?;
        deleted.push(s.name);
    }
    Ok(deleted)
}

/// Takes snapshots on `schedule` (in the server's time zone) until the task is aborted,
/// keeping the newest `retention` of them, as k3s's scheduled snapshots.
pub(crate) async fn run_schedule(
    schedule: k1s_controllers::cronjob::schedule::Schedule,
    data_dir: PathBuf,
    dir: PathBuf,
    name: String,
    retention: usize,
) {
    use k1s_controllers::cronjob::schedule::Fires as _;
    let tz = k1s_controllers::cronjob::schedule::local_time_zone();
    loop {
        let now = k8s_openapi::jiff::Timestamp::now();
        let Some(next) = schedule.next(now, &tz) else {
            tracing::warn!("--etcd-snapshot-schedule-cron never fires: no scheduled snapshots");
            return;
        };
        let wait = (next.as_millisecond() - now.as_millisecond()).max(0) as u64;
        tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
        match save_snapshot(&data_dir, &dir, &name).await {
            Ok(path) => {
                tracing::info!(snapshot = %path.display(), "saved a scheduled etcd snapshot")
            }
            Err(e) => {
                tracing::error!(
                    error = format!("{e:#}"),
                    "cannot save a scheduled etcd snapshot"
                );
                continue;
            }
        }
        let node = MemberConfig::load(&data_dir)
            .map(|c| c.node_name)
            .unwrap_or_default();
        match prune(&dir, &format!("{name}-{node}"), retention) {
            Ok(deleted) if !deleted.is_empty() => {
                tracing::info!(
                    ?deleted,
                    "deleted snapshots beyond --etcd-snapshot-retention"
                )
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = format!("{e:#}"), "cannot prune etcd snapshots"),
        }
    }
}

/// A snapshot file.
struct Snapshot {
    name: String,
    path: PathBuf,
    size: u64,
    created: Option<jiff::Timestamp>,
}

fn list(dir: &Path) -> anyhow::Result<Vec<Snapshot>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", dir.display())),
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Ok(meta) = entry.metadata() else { continue };
        if !meta.is_file() || name.starts_with('.') {
            continue;
        }
        let created = meta
            .modified()
            .ok()
            .and_then(|t| jiff::Timestamp::try_from(t).ok());
        out.push(Snapshot {
            name,
            path: entry.path(),
            size: meta.len(),
            created,
        });
    }
    out.sort_by(|a, b| a.created.cmp(&b.created).then(a.name.cmp(&b.name)));
    Ok(out)
}

/// k3s's `etcd-snapshot ls` columns: Name, Location, Size, Created.
fn table(snapshots: &[Snapshot]) -> String {
    let rows: Vec<[String; 4]> = snapshots
        .iter()
        .map(|s| {
            [
                s.name.clone(),
                format!("file://{}", s.path.display()),
                s.size.to_string(),
                s.created
                    .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
                    .unwrap_or_default(),
            ]
        })
        .collect();
    let header = ["Name", "Location", "Size", "Created"].map(String::from);
    let mut widths = header.clone().map(|h| h.len());
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.len());
        }
    }
    let mut text = String::new();
    for r in std::iter::once(&header).chain(&rows) {
        let line = r
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join(" ");
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text
}

/// Runs `k1s etcd`.
pub fn run_etcd(args: EtcdArgs) -> anyhow::Result<ExitCode> {
    let rt = runtime()?;
    let EtcdCommand::Member(member) = args.command;
    match member.command {
        MemberCommand::List(local) => rt.block_on(async {
            let mut client = local_client(&data_dir(&local)).await?;
            let list = client.member_list().await.context("cannot list members")?;
            println!("ID\tNAME\tPEER URLS\tCLIENT URLS\tLEARNER");
            for m in list.members() {
                println!(
                    "{:x}\t{}\t{}\t{}\t{}",
                    m.id(),
                    m.name(),
                    m.peer_urls().join(","),
                    m.client_urls().join(","),
                    m.is_learner()
                );
            }
            Ok(ExitCode::SUCCESS)
        }),
        MemberCommand::Remove(remove) => rt.block_on(async {
            let mut client = local_client(&data_dir(&remove.local)).await?;
            let list = client.member_list().await.context("cannot list members")?;
            let target = list
                .members()
                .iter()
                .find(|m| {
                    m.name() == remove.member
                        || format!("{:x}", m.id()) == remove.member.to_ascii_lowercase()
                })
                .with_context(|| format!("no etcd member {:?}", remove.member))?;
            let (id, name) = (target.id(), target.name().to_string());
            client
                .member_remove(id)
                .await
                .with_context(|| format!("cannot remove the member {name}"))?;
            println!("Member {id:x} ({name}) removed.");
            Ok(ExitCode::SUCCESS)
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restore_finds_a_snapshot_by_name_or_path() {
        let dir = tempfile::tempdir().unwrap();
        let snaps = dir.path().join("snapshots");
        std::fs::create_dir_all(&snaps).unwrap();
        std::fs::write(snaps.join("on-demand-n1-1"), b"x").unwrap();
        let elsewhere = dir.path().join("copied-snapshot");
        std::fs::write(&elsewhere, b"x").unwrap();
        assert_eq!(
            find_snapshot(&snaps, "on-demand-n1-1").unwrap(),
            snaps.join("on-demand-n1-1")
        );
        assert_eq!(
            find_snapshot(&snaps, &elsewhere.to_string_lossy()).unwrap(),
            elsewhere
        );
        for missing in ["nope", "..", "", "/no/such/file"] {
            let e = find_snapshot(&snaps, missing).unwrap_err().to_string();
            assert!(e.contains("no snapshot"), "{missing}: {e}");
        }
    }

    #[test]
    fn prune_keeps_the_newest_scheduled_snapshots_of_this_node() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "etcd-snapshot-n1-100",
            "etcd-snapshot-n1-300",
            "etcd-snapshot-n1-200",
            "etcd-snapshot-n2-50",
            "on-demand-n1-10",
        ] {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        let deleted = prune(dir.path(), "etcd-snapshot-n1", 2).unwrap();
        assert_eq!(deleted, vec!["etcd-snapshot-n1-100".to_string()]);
        let mut left: Vec<String> = list(dir.path())
            .unwrap()
            .into_iter()
            .map(|s| s.name)
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                "etcd-snapshot-n1-200",
                "etcd-snapshot-n1-300",
                "etcd-snapshot-n2-50",
                "on-demand-n1-10"
            ]
        );
    }

    #[test]
    fn ls_lists_snapshot_files_in_k3s_columns() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("on-demand-n1-1700000000"), b"abc").unwrap();
        std::fs::write(dir.path().join(".partial.part"), b"x").unwrap();
        let snaps = list(dir.path()).unwrap();
        assert_eq!(snaps.len(), 1);
        let text = table(&snaps);
        let mut lines = text.lines();
        let head = lines.next().unwrap();
        assert!(head.starts_with("Name"), "{text}");
        assert!(head.contains("Location") && head.contains("Size") && head.contains("Created"));
        let row = lines.next().unwrap();
        assert!(row.starts_with("on-demand-n1-1700000000 file://"), "{text}");
        assert!(row.contains(" 3 "), "{text}");
        assert!(list(&dir.path().join("missing")).unwrap().is_empty());
    }
}

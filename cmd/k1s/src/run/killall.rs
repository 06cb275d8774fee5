//! `k1s killall`: what k3s's `k3s-killall.sh` does for k3s — stop the node's processes
//! and containers, unmount what they mounted, and remove the pod network and the nftables
//! rules — scoped to one data dir and one bridge, so several k1s nodes on one host (tests)
//! clean up only their own. Prints each thing it removes; a second run finds nothing.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::cli::killall::KillallArgs;

/// Runs the clean-up; fails (after doing all it can) when any step failed.
pub fn run(args: KillallArgs) -> anyhow::Result<ExitCode> {
    let data_dir = args
        .data_dir
        .clone()
        .unwrap_or_else(super::server::default_data_dir);
    // Mount points in mountinfo are real paths.
    let data_dir = std::fs::canonicalize(&data_dir).unwrap_or(data_dir);
    let mut failures = Vec::new();

    let killed = kill_processes(&data_dir);
    for (pid, what) in &killed {
        println!("killed {what} (pid {pid})");
    }

    match unmount_under(&data_dir) {
        Ok(unmounted) => {
            for (path, fstype) in unmounted {
                if fstype == "nsfs" && path.ends_with("net") {
                    println!("removed network namespace {}", path.display());
                } else {
                    println!("unmounted {}", path.display());
                }
            }
        }
        Err(e) => failures.push(format!("{e:#}")),
    }

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        match k1s_net::cleanup::remove_bridge(&args.bridge_name).await {
            Ok(links) => {
                for link in links {
                    if link == args.bridge_name {
                        println!("deleted bridge {link}");
                    } else {
                        println!("deleted veth {link}");
                    }
                }
            }
            Err(e) => failures.push(format!("bridge {}: {e}", args.bridge_name)),
        }
        match k1s_net::cleanup::remove_link(&args.dns_interface).await {
            Ok(true) => println!("deleted interface {}", args.dns_interface),
            Ok(false) => {}
            Err(e) => failures.push(format!("interface {}: {e}", args.dns_interface)),
        }
        // The vxlan overlay's device beside this bridge (flannel.1 beside k1s0).
        let vxlan = k1s_net::vxlan::device_for_bridge(&args.bridge_name);
        match k1s_net::cleanup::remove_link(&vxlan).await {
            Ok(true) => println!("deleted interface {vxlan}"),
            Ok(false) => {}
            Err(e) => failures.push(format!("interface {vxlan}: {e}")),
        }
        let tables = k1s_net::cleanup::tables_for_bridge(&args.bridge_name).all();
        match k1s_net::cleanup::remove_tables(&tables).await {
            Ok(tables) => {
                for t in tables {
                    println!("deleted nftables table {t}");
                }
            }
            Err(e) => failures.push(format!("nftables: {e}")),
        }
    });

    if failures.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        for f in &failures {
            eprintln!("k1s killall: {f}");
        }
        Ok(ExitCode::FAILURE)
    }
}

/// A process as `/proc` shows it.
struct Proc {
    pid: i32,
    ppid: i32,
    argv: Vec<String>,
}

fn processes() -> Vec<Proc> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid ...`: comm may hold spaces and parentheses.
        let Some(ppid) = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse().ok())
        else {
            continue;
        };
        let argv = cmdline
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        out.push(Proc { pid, ppid, argv });
    }
    out
}

fn base(argv0: &str) -> &str {
    argv0.rsplit('/').next().unwrap_or(argv0)
}

/// The `--data-dir` a `k1s server` command line names (`None` when it names none).
fn data_dir_arg(argv: &[String]) -> Option<PathBuf> {
    let mut it = argv.iter();
    while let Some(a) = it.next() {
        if a == "--data-dir" || a == "-d" {
            return it.next().map(PathBuf::from);
        }
        if let Some(v) = a.strip_prefix("--data-dir=") {
            return Some(PathBuf::from(v));
        }
    }
    None
}

fn same_path(a: &Path, b: &Path) -> bool {
    let canon = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    canon(a) == canon(b)
}

/// SIGKILLs a `k1s server` on `data_dir`, its embedded containerd, and the shims of that
/// containerd with every process under them (the containers); returns what it killed.
fn kill_processes(data_dir: &Path) -> Vec<(i32, String)> {
    let me = std::process::id() as i32;
    let containerd_dir = data_dir.join("agent").join("containerd");
    let socket = containerd_dir.join("containerd.sock");
    let socket = socket.to_string_lossy().into_owned();
    let containerd_dir = containerd_dir.to_string_lossy().into_owned();
    let default_dir = super::server::default_data_dir();
    let procs = processes();
    let mut targets: Vec<(i32, String)> = Vec::new();
    for p in &procs {
        if p.pid == me || p.argv.is_empty() {
            continue;
        }
        let name = base(&p.argv[0]);
        let is_server = name.starts_with("k1s")
            && p.argv.iter().skip(1).any(|a| a == "server")
            && match data_dir_arg(&p.argv) {
                Some(d) => same_path(&d, data_dir),
                None => same_path(&default_dir, data_dir),
            };
        let is_containerd =
            name == "containerd" && p.argv.iter().any(|a| a.starts_with(&containerd_dir));
        let is_shim = name.starts_with("containerd-shim")
            && p.argv
                .windows(2)
                .any(|w| w[0] == "-address" && w[1] == socket);
        if is_server {
            targets.push((p.pid, "k1s server".into()));
        } else if is_containerd {
            targets.push((p.pid, "containerd".into()));
        } else if is_shim {
            targets.push((p.pid, name.to_owned()));
        }
    }
    // Everything under a shim is a container's process: take the whole tree.
    let mut children: HashMap<i32, Vec<&Proc>> = HashMap::new();
    for p in &procs {
        children.entry(p.ppid).or_default().push(p);
    }
    let mut seen: BTreeSet<i32> = targets.iter().map(|(p, _)| *p).collect();
    let mut stack: Vec<i32> = targets
        .iter()
        .filter(|(_, w)| w.starts_with("containerd-shim"))
        .map(|(p, _)| *p)
        .collect();
    while let Some(pid) = stack.pop() {
        for c in children.get(&pid).into_iter().flatten() {
            if seen.insert(c.pid) {
                let name = c.argv.first().map(|a| base(a)).unwrap_or("?");
                targets.push((c.pid, format!("container process {name}")));
                stack.push(c.pid);
            }
        }
    }
    let mut killed = Vec::new();
    for (pid, what) in targets {
        if kill(Pid::from_raw(pid), Signal::SIGKILL).is_ok() {
            killed.push((pid, what));
        }
    }
    // Gone before their mounts are taken away (a zombie holds nothing).
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline
        && killed.iter().any(|(pid, _)| {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
                !s.rsplit_once(')')
                    .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
            })
        })
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    killed
}

/// Unescapes a mountinfo field (`\040` for a space, and so on).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && let Some(v) = bytes
                .get(i + 1..i + 4)
                .and_then(|d| std::str::from_utf8(d).ok())
                .and_then(|d| u8::from_str_radix(d, 8).ok())
        {
            out.push(v);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The mounts (mount point, file system type) at or under `dir`, from mountinfo text.
fn mounts_under(mountinfo: &str, dir: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    for line in mountinfo.lines() {
        let mut halves = line.splitn(2, " - ");
        let (Some(left), Some(right)) = (halves.next(), halves.next()) else {
            continue;
        };
        let Some(point) = left.split(' ').nth(4) else {
            continue;
        };
        let point = PathBuf::from(unescape(point));
        let fstype = right.split(' ').next().unwrap_or("").to_owned();
        if point.starts_with(dir) && point != dir {
            out.push((point, fstype));
        }
    }
    out
}

/// Unmounts everything under `dir`, deepest first, until nothing is left (a path may be
/// mounted over more than once); returns what it unmounted.
fn unmount_under(dir: &Path) -> anyhow::Result<Vec<(PathBuf, String)>> {
    let mut done = Vec::new();
    for _ in 0..10 {
        let info = std::fs::read_to_string("/proc/self/mountinfo")
            .context("cannot read /proc/self/mountinfo")?;
        let mut mounts = mounts_under(&info, dir);
        if mounts.is_empty() {
            return Ok(done);
        }
        mounts.sort_by_key(|(p, _)| std::cmp::Reverse(p.components().count()));
        for (path, fstype) in mounts {
            match nix::mount::umount2(&path, nix::mount::MntFlags::MNT_DETACH) {
                Ok(()) => {
                    if !done.iter().any(|(p, _)| *p == path) {
                        done.push((path, fstype));
                    }
                }
                Err(e) => tracing::debug!(path = %path.display(), error = %e, "unmount"),
            }
        }
    }
    let left = mounts_under(
        &std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default(),
        dir,
    );
    if left.is_empty() {
        Ok(done)
    } else {
        anyhow::bail!(
            "cannot unmount {}",
            left.iter()
                .map(|(p, _)| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mounts_under_the_data_dir_are_found_with_their_type() {
        let info = "\
22 1 8:1 / / rw - ext4 /dev/vda rw
100 22 0:4 net:[4026532] /d/agent/containerd/k1s/sandboxes/ab/net rw - nsfs nsfs rw
101 22 0:50 / /d/agent/containerd/state/x/rootfs rw - overlay overlay rw
102 22 0:51 / /d/with\\040space rw - tmpfs tmpfs rw
103 22 0:52 / /data rw - tmpfs tmpfs rw
";
        let got = mounts_under(info, Path::new("/d"));
        assert_eq!(
            got,
            vec![
                (
                    PathBuf::from("/d/agent/containerd/k1s/sandboxes/ab/net"),
                    "nsfs".to_owned()
                ),
                (
                    PathBuf::from("/d/agent/containerd/state/x/rootfs"),
                    "overlay".to_owned()
                ),
                (PathBuf::from("/d/with space"), "tmpfs".to_owned()),
            ]
        );
    }

    #[test]
    fn a_server_command_line_names_its_data_dir() {
        let argv = |s: &str| s.split(' ').map(String::from).collect::<Vec<_>>();
        assert_eq!(
            data_dir_arg(&argv("k1s server --data-dir /x --debug")),
            Some(PathBuf::from("/x"))
        );
        assert_eq!(
            data_dir_arg(&argv("k1s server --data-dir=/y")),
            Some(PathBuf::from("/y"))
        );
        assert_eq!(data_dir_arg(&argv("k1s server")), None);
    }
}

//! The kubelet's Summary API (`GET /stats/summary`): upstream's `statsapi.Summary` JSON
//! (the node's and every pod's CPU, memory, network and filesystem stats, the pods'
//! volumes and ephemeral storage) from the same readings as [`crate::stats`]: cgroups,
//! `/proc`, statfs, and each pod's network namespace's `/proc/net/dev`.
//!
//! Left out, as the runtime does not report them: a container's `rootfs.usedBytes` (its
//! writable layer's size), `process_stats`, `systemContainers` and `swap`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use parking_lot::Mutex;
use serde_json::{Map, Value, json};

use crate::runtime::{Container, ContainerRuntime, ContainerState, ContainerStats, labels};
use crate::stats::{self, FsStats};

/// Where the summary's numbers come from besides the runtime.
#[derive(Debug, Clone)]
pub struct Sources {
    /// The node's name.
    pub node_name: String,
    /// The kubelet's folder (`pods/<uid>/volumes`; its filesystem is nodefs).
    pub root_dir: PathBuf,
    /// The pods' log folder.
    pub log_dir: PathBuf,
    /// The container runtime's folder (imagefs); nodefs when `None`.
    pub image_fs_dir: Option<PathBuf>,
}

/// CPU time readings by key, to compute `usageNanoCores` from the previous reading, as
/// upstream's stats provider caches them.
static CPU_SAMPLES: Mutex<Option<HashMap<String, (SystemTime, u64)>>> = Mutex::new(None);

/// Nanocores used since the last reading of `key`; `None` on the first.
fn nano_cores(key: &str, at: SystemTime, total_ns: u64) -> Option<u64> {
    let mut samples = CPU_SAMPLES.lock();
    let map = samples.get_or_insert_with(HashMap::new);
    let prev = map.insert(key.to_string(), (at, total_ns));
    let (t0, v0) = prev?;
    let dt = at.duration_since(t0).ok()?.as_nanos();
    if dt == 0 || total_ns < v0 {
        return None;
    }
    u64::try_from(u128::from(total_ns - v0) * 1_000_000_000 / dt).ok()
}

/// RFC 3339 at seconds, as the API writes times.
pub fn rfc3339(t: SystemTime) -> String {
    jiff::Timestamp::try_from(t)
        .ok()
        .and_then(|ts| jiff::Timestamp::from_second(ts.as_second()).ok())
        .map(|ts| ts.to_string())
        .unwrap_or_default()
}

fn cpu_json(key: &str, at: SystemTime, total_ns: u64) -> Value {
    let mut v = json!({"time": rfc3339(at), "usageCoreNanoSeconds": total_ns});
    if let Some(n) = nano_cores(key, at, total_ns) {
        v["usageNanoCores"] = json!(n);
    }
    v
}

fn memory_json(s: &ContainerStats) -> Value {
    let mut v = json!({
        "time": rfc3339(s.timestamp),
        "usageBytes": s.memory_usage_bytes,
        "workingSetBytes": s.memory_working_set_bytes,
        "rssBytes": s.memory_rss_bytes,
        "pageFaults": s.page_faults,
        "majorPageFaults": s.major_page_faults,
    });
    if let Some(limit) = s.memory_limit_bytes {
        v["availableBytes"] = json!(limit.saturating_sub(s.memory_working_set_bytes));
    }
    v
}

/// `FsStats` JSON: `used` overrides the filesystem's used bytes (a folder's usage).
fn fs_json(at: SystemTime, fs: Option<&FsStats>, used: Option<u64>) -> Value {
    let mut v = json!({"time": rfc3339(at)});
    if let Some(f) = fs {
        v["availableBytes"] = json!(f.available_bytes);
        v["capacityBytes"] = json!(f.capacity_bytes);
        v["inodesFree"] = json!(f.inodes_free);
        v["inodes"] = json!(f.inodes);
        if used.is_none() {
            v["usedBytes"] = json!(f.used_bytes);
            v["inodesUsed"] = json!(f.inodes.saturating_sub(f.inodes_free));
        }
    }
    if let Some(u) = used {
        v["usedBytes"] = json!(u);
    }
    v
}

/// One interface's counters from `/proc/net/dev`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    /// Its name.
    pub name: String,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Receive errors.
    pub rx_errors: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Send errors.
    pub tx_errors: u64,
}

/// The interfaces of a `/proc/net/dev` text, loopback left out (as cadvisor does).
pub fn parse_net_dev(text: &str) -> Vec<Interface> {
    text.lines()
        .skip(2)
        .filter_map(|l| {
            let (name, rest) = l.split_once(':')?;
            let name = name.trim().to_string();
            if name == "lo" {
                return None;
            }
            let f: Vec<u64> = rest
                .split_whitespace()
                .filter_map(|v| v.parse().ok())
                .collect();
            Some(Interface {
                name,
                rx_bytes: *f.first()?,
                rx_errors: *f.get(2)?,
                tx_bytes: *f.get(8)?,
                tx_errors: *f.get(10)?,
            })
        })
        .collect()
}

/// The interfaces seen from inside the network namespace file `netns`: a fresh thread
/// enters it and reads its own `/proc/thread-self/net/dev`.
async fn netns_interfaces(netns: PathBuf) -> Option<Vec<Interface>> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("k1s-netstats".into())
        .spawn(move || {
            let read = || -> Option<String> {
                let file = std::fs::File::open(&netns).ok()?;
                nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).ok()?;
                std::fs::read_to_string("/proc/thread-self/net/dev").ok()
            };
            let _ = tx.send(read());
        })
        .ok()?;
    rx.await.ok().flatten().map(|t| parse_net_dev(&t))
}

/// `NetworkStats` JSON: the default interface (`eth0`, else the first) and all of them.
fn network_json(at: SystemTime, ifaces: &[Interface], default: &str) -> Option<Value> {
    let one = |i: &Interface| {
        json!({"name": i.name, "rxBytes": i.rx_bytes, "rxErrors": i.rx_errors,
               "txBytes": i.tx_bytes, "txErrors": i.tx_errors})
    };
    let main = ifaces
        .iter()
        .find(|i| i.name == default)
        .or_else(|| ifaces.first())?;
    let mut v = one(main);
    v["time"] = json!(rfc3339(at));
    v["interfaces"] = Value::Array(ifaces.iter().map(one).collect());
    Some(v)
}

/// Bytes and inodes under `dir` (links not followed).
pub fn du(dir: &Path) -> (u64, u64) {
    let (mut bytes, mut inodes) = (0, 0);
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(meta) = e.path().symlink_metadata() else {
                continue;
            };
            inodes += 1;
            if meta.is_dir() {
                stack.push(e.path());
            } else {
                bytes += meta.len();
            }
        }
    }
    (bytes, inodes)
}

/// The node's host-side facts read once per summary.
struct NodeFacts {
    boot: Option<SystemTime>,
    /// MemTotal less MemFree.
    usage_bytes: u64,
    anon_bytes: u64,
    page_faults: u64,
    major_page_faults: u64,
}

fn node_facts() -> NodeFacts {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let boot = stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|s| SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(s));
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let kib = |n: &str| {
        meminfo
            .lines()
            .find_map(|l| l.strip_prefix(n))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or(0)
            * 1024
    };
    let anon_bytes = kib("AnonPages:");
    let usage_bytes = kib("MemTotal:").saturating_sub(kib("MemFree:"));
    let vmstat = std::fs::read_to_string("/proc/vmstat").unwrap_or_default();
    let field = |n: &str| {
        vmstat
            .lines()
            .find_map(|l| l.strip_prefix(n)?.strip_prefix(' ')?.trim().parse().ok())
            .unwrap_or(0)
    };
    NodeFacts {
        boot,
        usage_bytes,
        anon_bytes,
        page_faults: field("pgfault"),
        major_page_faults: field("pgmajfault"),
    }
}

/// Upstream's Summary JSON.
pub async fn summary(runtime: &dyn ContainerRuntime, src: &Sources) -> Value {
    let now = SystemTime::now();
    let nodefs = stats::fs_stats(&src.root_dir);
    let imagefs = src
        .image_fs_dir
        .as_deref()
        .and_then(stats::fs_stats)
        .or(nodefs);
    let mut node = Map::new();
    node.insert("nodeName".into(), json!(src.node_name));
    let facts = node_facts();
    if let Some(b) = facts.boot {
        node.insert("startTime".into(), json!(rfc3339(b)));
    }
    if let Some(n) = stats::node_stats() {
        node.insert("cpu".into(), cpu_json("node", n.timestamp, n.cpu_usage_ns));
        node.insert(
            "memory".into(),
            json!({
                "time": rfc3339(n.timestamp),
                "availableBytes": n.memory_total_bytes.saturating_sub(n.memory_working_set_bytes),
                "usageBytes": facts.usage_bytes,
                "workingSetBytes": n.memory_working_set_bytes,
                "rssBytes": facts.anon_bytes,
                "pageFaults": facts.page_faults,
                "majorPageFaults": facts.major_page_faults,
            }),
        );
    }
    let host_ifaces = std::fs::read_to_string("/proc/net/dev")
        .map(|t| parse_net_dev(&t))
        .unwrap_or_default();
    if let Some(net) = network_json(now, &host_ifaces, "eth0") {
        node.insert("network".into(), net);
    }
    node.insert("fs".into(), fs_json(now, nodefs.as_ref(), None));
    node.insert(
        "runtime".into(),
        json!({
            "imageFs": fs_json(now, imagefs.as_ref(), None),
            "containerFs": fs_json(now, imagefs.as_ref(), None),
        }),
    );
    if let Some(p) = stats::pid_stats() {
        node.insert(
            "rlimit".into(),
            json!({"time": rfc3339(now), "maxpid": p.max_pids, "curproc": p.running}),
        );
    }
    let pods = pods(runtime, src, now, nodefs.as_ref(), imagefs.as_ref()).await;
    json!({"node": Value::Object(node), "pods": pods})
}

async fn pods(
    runtime: &dyn ContainerRuntime,
    src: &Sources,
    now: SystemTime,
    nodefs: Option<&FsStats>,
    imagefs: Option<&FsStats>,
) -> Vec<Value> {
    let (sandboxes, containers) =
        match tokio::try_join!(runtime.list_sandboxes(), runtime.list_containers()) {
            Ok(v) => v,
            Err(e) => {
                tracing::debug!(error = %e, "summary: cannot list the runtime's pods");
                return Vec::new();
            }
        };
    let label = |l: &BTreeMap<String, String>, k: &str| l.get(k).cloned().unwrap_or_default();
    // The newest ready sandbox of each pod.
    let mut by_uid: BTreeMap<String, &crate::runtime::Sandbox> = BTreeMap::new();
    for s in sandboxes.iter().filter(|s| s.ready) {
        let uid = label(&s.labels, labels::POD_UID);
        if uid.is_empty() {
            continue;
        }
        match by_uid.get(&uid) {
            Some(old) if old.created_at >= s.created_at => {}
            _ => {
                by_uid.insert(uid, s);
            }
        }
    }
    let mut out = Vec::new();
    for (uid, sandbox) in by_uid {
        let ns = label(&sandbox.labels, labels::POD_NAMESPACE);
        let name = label(&sandbox.labels, labels::POD_NAME);
        let running: Vec<&Container> = containers
            .iter()
            .filter(|c| {
                c.state == ContainerState::Running && c.labels.get(labels::POD_UID) == Some(&uid)
            })
            .collect();
        let log_root = src.log_dir.join(format!("{ns}_{name}_{uid}"));
        let mut cs = Vec::new();
        let (mut cpu_total, mut mem): (u64, Option<ContainerStats>) = (0, None);
        let mut logs_total = 0u64;
        for c in running {
            let cname = label(&c.labels, labels::CONTAINER_NAME);
            let (log_bytes, log_inodes) = du(&log_root.join(&cname));
            logs_total += log_bytes;
            let mut v = json!({
                "name": cname,
                "rootfs": fs_json(now, imagefs, None),
                "logs": fs_json(now, nodefs, Some(log_bytes)),
            });
            // Only the logs' own inodes are theirs.
            v["logs"]["inodesUsed"] = json!(log_inodes);
            if let Some(obj) = v["rootfs"].as_object_mut() {
                // The writable layer's size is not known: no usage rather than a wrong one.
                obj.remove("usedBytes");
                obj.remove("inodesUsed");
            }
            if let Some(t) = c.started_at {
                v["startTime"] = json!(rfc3339(t));
            }
            if let Ok(Some(s)) = runtime.container_stats(&c.id).await {
                v["cpu"] = cpu_json(&c.id, s.timestamp, s.cpu_usage_ns);
                v["memory"] = memory_json(&s);
                cpu_total += s.cpu_usage_ns;
                mem = Some(match mem {
                    None => s,
                    Some(m) => ContainerStats {
                        timestamp: m.timestamp.max(s.timestamp),
                        cpu_usage_ns: 0,
                        memory_working_set_bytes: m.memory_working_set_bytes
                            + s.memory_working_set_bytes,
                        memory_usage_bytes: m.memory_usage_bytes + s.memory_usage_bytes,
                        memory_rss_bytes: m.memory_rss_bytes + s.memory_rss_bytes,
                        page_faults: m.page_faults + s.page_faults,
                        major_page_faults: m.major_page_faults + s.major_page_faults,
                        memory_limit_bytes: None,
                    },
                });
            }
            cs.push(v);
        }
        let mut pod = json!({
            "podRef": {"name": name, "namespace": ns, "uid": uid},
            "startTime": rfc3339(sandbox.created_at),
            "containers": cs,
        });
        if let Some(m) = &mem {
            pod["cpu"] = cpu_json(&format!("pod/{uid}"), m.timestamp, cpu_total);
            let mut mj = memory_json(m);
            if let Some(o) = mj.as_object_mut() {
                o.remove("availableBytes");
            }
            pod["memory"] = mj;
        }
        if let Some(netns) = sandbox.netns.clone()
            && let Some(ifaces) = netns_interfaces(netns).await
            && let Some(net) = network_json(now, &ifaces, "eth0")
        {
            pod["network"] = net;
        }
        // Volumes: `<root>/pods/<uid>/volumes/kubernetes.io~<plugin>/<name>`.
        let mut volumes = Vec::new();
        let mut ephemeral = logs_total;
        let vol_root = src.root_dir.join("pods").join(&uid).join("volumes");
        if let Ok(plugins) = std::fs::read_dir(&vol_root) {
            for plugin in plugins.flatten() {
                let plugin_name = plugin.file_name().to_string_lossy().into_owned();
                let Ok(vols) = std::fs::read_dir(plugin.path()) else {
                    continue;
                };
                for vol in vols.flatten() {
                    let path = vol.path();
                    let (bytes, inodes) = du(&path);
                    let fs = stats::fs_stats(&path);
                    let mut v = fs_json(now, fs.as_ref(), Some(bytes));
                    v["inodesUsed"] = json!(inodes);
                    v["name"] = json!(vol.file_name().to_string_lossy());
                    // emptyDirs on the node's disk are the pod's ephemeral storage.
                    if plugin_name == "kubernetes.io~empty-dir" && fs == nodefs.copied() {
                        ephemeral += bytes;
                    }
                    volumes.push(v);
                }
            }
        }
        if !volumes.is_empty() {
            pod["volume"] = Value::Array(volumes);
        }
        pod["ephemeral-storage"] = fs_json(now, nodefs, Some(ephemeral));
        out.push(pod);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn net_dev_is_read_without_loopback() {
        let text = "Inter-|   Receive                                                |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    lo:  100 1 0 0 0 0 0 0 100 1 0 0 0 0 0 0\n  eth0: 5000 10 2 0 0 0 0 0 7000 12 3 0 0 0 0 0\n";
        assert_eq!(
            parse_net_dev(text),
            vec![Interface {
                name: "eth0".into(),
                rx_bytes: 5000,
                rx_errors: 2,
                tx_bytes: 7000,
                tx_errors: 3,
            }]
        );
    }

    #[test]
    fn nano_cores_come_from_two_readings() {
        let t0 = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(100);
        assert_eq!(nano_cores("test-key", t0, 1_000_000_000), None);
        // Half a core over two seconds.
        assert_eq!(
            nano_cores(
                "test-key",
                t0 + std::time::Duration::from_secs(2),
                2_000_000_000
            ),
            Some(500_000_000)
        );
    }

    #[tokio::test]
    async fn the_summary_has_upstreams_shape() {
        let dir = tempfile::tempdir().expect("tempdir");
        let runtime = crate::runtime::fake::FakeRuntime::new();
        let src = Sources {
            node_name: "n1".into(),
            root_dir: dir.path().to_path_buf(),
            log_dir: dir.path().join("logs"),
            image_fs_dir: None,
        };
        let s = summary(&runtime, &src).await;
        assert_eq!(s["node"]["nodeName"], "n1");
        for key in ["cpu", "memory", "fs", "runtime", "rlimit", "startTime"] {
            assert!(s["node"].get(key).is_some(), "{key} missing in {s}");
        }
        assert!(s["node"]["memory"]["workingSetBytes"].as_u64().is_some());
        assert!(
            s["node"]["fs"]["capacityBytes"]
                .as_u64()
                .is_some_and(|c| c > 0)
        );
        assert!(s["node"]["runtime"]["imageFs"]["availableBytes"].is_u64());
        assert_eq!(s["pods"], json!([]));
    }
}

//! Resource usage of the node and of its containers, as upstream's kubelet reports it on
//! `/metrics/resource` (the endpoint metrics-server scrapes): cumulative CPU time and the
//! memory working set (usage less the inactive file cache, as cadvisor computes it).
//!
//! Containers are read from their cgroups (v1: `cpuacct.usage`, `memory.usage_in_bytes`,
//! `memory.stat`'s `total_inactive_file`; v2: `cpu.stat`'s `usage_usec`, `memory.current`,
//! `memory.stat`'s `inactive_file`); the node from `/proc/stat` and `/proc/meminfo`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::runtime::{ContainerRuntime, ContainerState, ContainerStats, labels};

/// Where cgroup file systems are mounted.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// The node's own usage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeStats {
    /// When it was read.
    pub timestamp: SystemTime,
    /// CPU time used by every CPU since boot, in nanoseconds.
    pub cpu_usage_ns: u64,
    /// Memory in use less the inactive file cache, in bytes.
    pub memory_working_set_bytes: u64,
    /// Memory available (`MemAvailable`), in bytes: what `memory.available` eviction
    /// thresholds compare against.
    pub memory_available_bytes: u64,
    /// The node's memory, in bytes.
    pub memory_total_bytes: u64,
}

/// One running container's usage, named as its pod names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerUsage {
    /// The pod's namespace.
    pub namespace: String,
    /// The pod's name.
    pub pod: String,
    /// The container's name in the pod.
    pub container: String,
    /// When the container's process started.
    pub started_at: Option<SystemTime>,
    /// Its usage.
    pub stats: ContainerStats,
}

/// Everything `/metrics/resource` reports.
#[derive(Debug, Clone, Default)]
pub struct ResourceMetrics {
    /// The node's usage, if it could be read.
    pub node: Option<NodeStats>,
    /// Every running container's usage.
    pub containers: Vec<ContainerUsage>,
    /// Something could not be read (upstream's `resource_scrape_error`).
    pub scrape_error: bool,
}

/// Reads a container's usage from its cgroup (the cgroupfs path it was created with, such
/// as `/kubepods/besteffort/pod<uid>/<id>`); `None` when the cgroup is gone.
pub fn cgroup_stats(cgroup: &str) -> Option<ContainerStats> {
    cgroup_stats_at(Path::new(CGROUP_ROOT), cgroup)
}

/// [`cgroup_stats`] under another mount root (tests).
pub fn cgroup_stats_at(root: &Path, cgroup: &str) -> Option<ContainerStats> {
    let rel = cgroup.trim_start_matches('/');
    let timestamp = SystemTime::now();
    if root.join("memory").join("memory.limit_in_bytes").exists() {
        // v1: one hierarchy per controller; cpuacct may share a mount with cpu.
        let cpuacct = ["cpuacct", "cpu,cpuacct", "cpuacct,cpu"]
            .iter()
            .map(|m| root.join(m).join(rel).join("cpuacct.usage"))
            .find(|p| p.exists())?;
        let cpu_usage_ns = read_u64(&cpuacct)?;
        let memory = root.join("memory").join(rel);
        let usage = read_u64(&memory.join("memory.usage_in_bytes"))?;
        let stat = std::fs::read_to_string(memory.join("memory.stat")).unwrap_or_default();
        let field = |n: &str| stat_field(&stat, n).unwrap_or(0);
        // v1 writes "no limit" as the largest page-aligned i64.
        let limit = read_u64(&memory.join("memory.limit_in_bytes")).filter(|l| *l < (1 << 62));
        return Some(ContainerStats {
            timestamp,
            cpu_usage_ns,
            memory_working_set_bytes: usage.saturating_sub(field("total_inactive_file")),
            memory_usage_bytes: usage,
            memory_rss_bytes: field("total_rss"),
            page_faults: field("total_pgfault"),
            major_page_faults: field("total_pgmajfault"),
            memory_limit_bytes: limit,
        });
    }
    let dir = root.join(rel);
    let cpu = std::fs::read_to_string(dir.join("cpu.stat")).ok()?;
    let cpu_usage_ns = stat_field(&cpu, "usage_usec")?.saturating_mul(1000);
    let usage = read_u64(&dir.join("memory.current"))?;
    let stat = std::fs::read_to_string(dir.join("memory.stat")).unwrap_or_default();
    let field = |n: &str| stat_field(&stat, n).unwrap_or(0);
    // v2 writes "max" when unlimited, which does not parse.
    let limit = read_u64(&dir.join("memory.max"));
    Some(ContainerStats {
        timestamp,
        cpu_usage_ns,
        memory_working_set_bytes: usage.saturating_sub(field("inactive_file")),
        memory_usage_bytes: usage,
        memory_rss_bytes: field("anon"),
        page_faults: field("pgfault"),
        major_page_faults: field("pgmajfault"),
        memory_limit_bytes: limit,
    })
}

fn read_u64(path: &PathBuf) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The value of `name` in a `key value` file (`memory.stat`, `cpu.stat`).
fn stat_field(text: &str, name: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let mut parts = l.split_whitespace();
        (parts.next() == Some(name))
            .then(|| parts.next().and_then(|v| v.parse().ok()))
            .flatten()
    })
}

/// Reads the node's usage from `/proc`.
pub fn node_stats() -> Option<NodeStats> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let ticks = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .and_then(|t| u64::try_from(t).ok())
        .filter(|t| *t > 0)
        .unwrap_or(100);
    parse_node_stats(&stat, &meminfo, ticks, SystemTime::now())
}

/// The node's usage from the text of `/proc/stat` and `/proc/meminfo`, with `ticks` clock
/// ticks a second: CPU is every busy tick of the aggregate `cpu` line (user, nice, system,
/// irq, softirq, steal; not idle and iowait); the working set is what is not free less the
/// inactive file cache, as cadvisor reads the root cgroup.
pub fn parse_node_stats(
    stat: &str,
    meminfo: &str,
    ticks: u64,
    timestamp: SystemTime,
) -> Option<NodeStats> {
    let cpu_line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let fields: Vec<u64> = cpu_line
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let field = |i: usize| fields.get(i).copied().unwrap_or(0);
    // user nice system idle iowait irq softirq steal
    let busy = field(0) + field(1) + field(2) + field(5) + field(6) + field(7);
    let cpu_usage_ns = busy.saturating_mul(1_000_000_000 / ticks.max(1));
    let kib = |name: &str| {
        meminfo.lines().find_map(|l| {
            let rest = l.strip_prefix(name)?.strip_prefix(':')?;
            rest.split_whitespace()
                .next()?
                .parse::<u64>()
                .ok()
                .map(|v| v * 1024)
        })
    };
    let total = kib("MemTotal")?;
    let free = kib("MemFree").unwrap_or(0);
    let inactive_file = kib("Inactive(file)").unwrap_or(0);
    let available = kib("MemAvailable").unwrap_or(free);
    Some(NodeStats {
        timestamp,
        cpu_usage_ns,
        memory_working_set_bytes: total.saturating_sub(free).saturating_sub(inactive_file),
        memory_available_bytes: available,
        memory_total_bytes: total,
    })
}

/// A filesystem's size and use, from statfs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FsStats {
    /// Its size, in bytes.
    pub capacity_bytes: u64,
    /// What unprivileged users may still write, in bytes.
    pub available_bytes: u64,
    /// What is used, in bytes.
    pub used_bytes: u64,
    /// Its inodes.
    pub inodes: u64,
    /// Its free inodes.
    pub inodes_free: u64,
}

/// The statfs of the filesystem holding `path`.
pub fn fs_stats(path: &Path) -> Option<FsStats> {
    let s = nix::sys::statvfs::statvfs(path).ok()?;
    // The statvfs field types differ between platforms; u64 holds them all.
    #[allow(clippy::useless_conversion)]
    let (blocks, bfree, bavail, frsize, files, ffree) = (
        u64::from(s.blocks()),
        u64::from(s.blocks_free()),
        u64::from(s.blocks_available()),
        u64::from(s.fragment_size()),
        u64::from(s.files()),
        u64::from(s.files_free()),
    );
    Some(FsStats {
        capacity_bytes: blocks.saturating_mul(frsize),
        available_bytes: bavail.saturating_mul(frsize),
        used_bytes: blocks.saturating_sub(bfree).saturating_mul(frsize),
        inodes: files,
        inodes_free: ffree,
    })
}

/// The node's process limit and use (upstream's `rlimit` stats).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PidStats {
    /// The most processes the kernel allows (`pid_max`, or `threads-max` when lower).
    pub max_pids: u64,
    /// Processes now.
    pub running: u64,
}

/// Reads the node's process limit and count from `/proc`.
pub fn pid_stats() -> Option<PidStats> {
    let read = |p: &str| -> Option<u64> { std::fs::read_to_string(p).ok()?.trim().parse().ok() };
    let pid_max = read("/proc/sys/kernel/pid_max")?;
    let max_pids = read("/proc/sys/kernel/threads-max").map_or(pid_max, |t| t.min(pid_max));
    let running = nix::sys::sysinfo::sysinfo().ok()?.process_count();
    Some(PidStats {
        max_pids,
        running: u64::from(running),
    })
}

/// Reads the node's and every running container's usage.
pub async fn collect(runtime: &dyn ContainerRuntime) -> ResourceMetrics {
    let mut out = ResourceMetrics {
        node: node_stats(),
        ..Default::default()
    };
    out.scrape_error = out.node.is_none();
    let containers = match runtime.list_containers().await {
        Ok(c) => c,
        Err(e) => {
            tracing::debug!(error = %e, "stats: cannot list containers");
            out.scrape_error = true;
            return out;
        }
    };
    for c in containers {
        if c.state != ContainerState::Running {
            continue;
        }
        let label = |k: &str| c.labels.get(k).cloned().unwrap_or_default();
        match runtime.container_stats(&c.id).await {
            Ok(Some(stats)) => out.containers.push(ContainerUsage {
                namespace: label(labels::POD_NAMESPACE),
                pod: label(labels::POD_NAME),
                container: label(labels::CONTAINER_NAME),
                started_at: c.started_at,
                stats,
            }),
            Ok(None) => {}
            Err(e) => {
                tracing::debug!(container = %c.id, error = %e, "stats: cannot read a container");
                out.scrape_error = true;
            }
        }
    }
    out.containers.sort_by(|a, b| {
        (&a.namespace, &a.pod, &a.container).cmp(&(&b.namespace, &b.pod, &b.container))
    });
    out
}

fn millis(t: SystemTime) -> u128 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis())
}

fn seconds(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The Prometheus text upstream's kubelet serves on `/metrics/resource`: the metric
/// names, help, types and labels metrics-server reads, each sample with the time it was
/// read (milliseconds).
pub fn render(m: &ResourceMetrics) -> String {
    let mut out = String::new();
    let header = |out: &mut String, name: &str, help: &str, kind: &str| {
        let _ = writeln!(out, "# HELP {name} [STABLE] {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
    };
    let container_labels = |c: &ContainerUsage| {
        format!(
            "container=\"{}\",namespace=\"{}\",pod=\"{}\"",
            escape(&c.container),
            escape(&c.namespace),
            escape(&c.pod)
        )
    };
    header(
        &mut out,
        "container_cpu_usage_seconds_total",
        "Cumulative cpu time consumed by the container in core-seconds",
        "counter",
    );
    for c in &m.containers {
        let _ = writeln!(
            out,
            "container_cpu_usage_seconds_total{{{}}} {} {}",
            container_labels(c),
            c.stats.cpu_usage_ns as f64 / 1e9,
            millis(c.stats.timestamp)
        );
    }
    header(
        &mut out,
        "container_memory_working_set_bytes",
        "Current working set of the container in bytes",
        "gauge",
    );
    for c in &m.containers {
        let _ = writeln!(
            out,
            "container_memory_working_set_bytes{{{}}} {} {}",
            container_labels(c),
            c.stats.memory_working_set_bytes,
            millis(c.stats.timestamp)
        );
    }
    header(
        &mut out,
        "container_start_time_seconds",
        "Start time of the container since unix epoch in seconds",
        "gauge",
    );
    for c in &m.containers {
        if let Some(started) = c.started_at {
            let _ = writeln!(
                out,
                "container_start_time_seconds{{{}}} {} {}",
                container_labels(c),
                seconds(started),
                millis(c.stats.timestamp)
            );
        }
    }
    if let Some(n) = &m.node {
        header(
            &mut out,
            "node_cpu_usage_seconds_total",
            "Cumulative cpu time consumed by the node in core-seconds",
            "counter",
        );
        let _ = writeln!(
            out,
            "node_cpu_usage_seconds_total {} {}",
            n.cpu_usage_ns as f64 / 1e9,
            millis(n.timestamp)
        );
        header(
            &mut out,
            "node_memory_working_set_bytes",
            "Current working set of the node in bytes",
            "gauge",
        );
        let _ = writeln!(
            out,
            "node_memory_working_set_bytes {} {}",
            n.memory_working_set_bytes,
            millis(n.timestamp)
        );
    }
    // Pods: the sums of their containers (their cgroups hold nothing else: no pause
    // process).
    let mut pods: Vec<(&str, &str, u64, u64, SystemTime)> = Vec::new();
    for c in &m.containers {
        match pods.last_mut() {
            Some(p) if p.0 == c.namespace && p.1 == c.pod => {
                p.2 += c.stats.cpu_usage_ns;
                p.3 += c.stats.memory_working_set_bytes;
                p.4 = p.4.max(c.stats.timestamp);
            }
            _ => pods.push((
                &c.namespace,
                &c.pod,
                c.stats.cpu_usage_ns,
                c.stats.memory_working_set_bytes,
                c.stats.timestamp,
            )),
        }
    }
    header(
        &mut out,
        "pod_cpu_usage_seconds_total",
        "Cumulative cpu time consumed by the pod in core-seconds",
        "counter",
    );
    for (ns, pod, cpu, _, t) in &pods {
        let _ = writeln!(
            out,
            "pod_cpu_usage_seconds_total{{namespace=\"{}\",pod=\"{}\"}} {} {}",
            escape(ns),
            escape(pod),
            *cpu as f64 / 1e9,
            millis(*t)
        );
    }
    header(
        &mut out,
        "pod_memory_working_set_bytes",
        "Current working set of the pod in bytes",
        "gauge",
    );
    for (ns, pod, _, mem, t) in &pods {
        let _ = writeln!(
            out,
            "pod_memory_working_set_bytes{{namespace=\"{}\",pod=\"{}\"}} {} {}",
            escape(ns),
            escape(pod),
            mem,
            millis(*t)
        );
    }
    header(
        &mut out,
        "resource_scrape_error",
        "1 if there was an error while getting container metrics, 0 otherwise",
        "gauge",
    );
    let _ = writeln!(out, "resource_scrape_error {}", u8::from(m.scrape_error));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn node_usage_is_the_busy_ticks_and_memory_less_free_and_inactive_files() {
        let stat = "cpu  100 20 30 1000 50 5 5 10 0 0\ncpu0 50 10 15 500 25 2 2 5 0 0\n";
        let meminfo = "MemTotal:        1000 kB\nMemFree:          200 kB\nMemAvailable:     600 kB\nInactive(file):   300 kB\n";
        let t = UNIX_EPOCH + Duration::from_secs(10);
        let n = parse_node_stats(stat, meminfo, 100, t).expect("parsed");
        // (100+20+30+5+5+10) ticks of 10 ms.
        assert_eq!(n.cpu_usage_ns, 170 * 10_000_000);
        assert_eq!(n.memory_working_set_bytes, (1000 - 200 - 300) * 1024);
        assert_eq!(n.memory_available_bytes, 600 * 1024);
        assert_eq!(n.memory_total_bytes, 1000 * 1024);
    }

    #[test]
    fn container_usage_is_read_from_v1_and_v2_cgroups() {
        let dir = tempfile::tempdir().expect("tempdir");
        let v1 = dir.path().join("v1");
        let cg = "kubepods/besteffort/podu/c1";
        std::fs::create_dir_all(v1.join("memory").join(cg)).expect("mkdir");
        std::fs::create_dir_all(v1.join("cpuacct").join(cg)).expect("mkdir");
        std::fs::write(
            v1.join("memory/memory.limit_in_bytes"),
            "9223372036854771712\n",
        )
        .expect("write");
        std::fs::write(
            v1.join("cpuacct").join(cg).join("cpuacct.usage"),
            "123456789\n",
        )
        .expect("write");
        std::fs::write(
            v1.join("memory").join(cg).join("memory.usage_in_bytes"),
            "8192000\n",
        )
        .expect("write");
        std::fs::write(
            v1.join("memory").join(cg).join("memory.stat"),
            "cache 100\ninactive_file 5\ntotal_inactive_file 192000\n",
        )
        .expect("write");
        let s = cgroup_stats_at(&v1, &format!("/{cg}")).expect("v1 stats");
        assert_eq!(s.cpu_usage_ns, 123_456_789);
        assert_eq!(s.memory_working_set_bytes, 8_000_000);

        let v2 = dir.path().join("v2");
        std::fs::create_dir_all(v2.join(cg)).expect("mkdir");
        std::fs::write(
            v2.join(cg).join("cpu.stat"),
            "usage_usec 2500\nuser_usec 2000\n",
        )
        .expect("write");
        std::fs::write(v2.join(cg).join("memory.current"), "4096\n").expect("write");
        std::fs::write(
            v2.join(cg).join("memory.stat"),
            "anon 1\nactive_file 7\ninactive_file 1024\n",
        )
        .expect("write");
        let s = cgroup_stats_at(&v2, cg).expect("v2 stats");
        assert_eq!(s.cpu_usage_ns, 2_500_000);
        assert_eq!(s.memory_working_set_bytes, 3072);
        assert!(cgroup_stats_at(&v2, "gone").is_none());
    }

    #[test]
    fn the_text_names_what_metrics_server_reads() {
        let t = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        let usage = |pod: &str, container: &str, cpu: u64| ContainerUsage {
            namespace: "default".into(),
            pod: pod.into(),
            container: container.into(),
            started_at: Some(UNIX_EPOCH + Duration::from_secs(1_700_000_000)),
            stats: ContainerStats {
                timestamp: t,
                cpu_usage_ns: cpu,
                memory_working_set_bytes: 1024,
                memory_usage_bytes: 2048,
                memory_rss_bytes: 512,
                page_faults: 0,
                major_page_faults: 0,
                memory_limit_bytes: None,
            },
        };
        let m = ResourceMetrics {
            node: Some(NodeStats {
                timestamp: t,
                cpu_usage_ns: 1_500_000_000,
                memory_working_set_bytes: 2048,
                memory_available_bytes: 1,
                memory_total_bytes: 2,
            }),
            containers: vec![usage("a", "x", 500_000_000), usage("a", "y", 250_000_000)],
            scrape_error: false,
        };
        let text = render(&m);
        for line in [
            "container_cpu_usage_seconds_total{container=\"x\",namespace=\"default\",pod=\"a\"} 0.5 1700000000123",
            "container_memory_working_set_bytes{container=\"y\",namespace=\"default\",pod=\"a\"} 1024 1700000000123",
            "container_start_time_seconds{container=\"x\",namespace=\"default\",pod=\"a\"} 1700000000 1700000000123",
            "node_cpu_usage_seconds_total 1.5 1700000000123",
            "node_memory_working_set_bytes 2048 1700000000123",
            "pod_cpu_usage_seconds_total{namespace=\"default\",pod=\"a\"} 0.75 1700000000123",
            "pod_memory_working_set_bytes{namespace=\"default\",pod=\"a\"} 2048 1700000000123",
            "resource_scrape_error 0",
            "# TYPE node_cpu_usage_seconds_total counter",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
    }
}

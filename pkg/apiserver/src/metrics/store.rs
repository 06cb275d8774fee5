//! The last two points of every node and container, and the usage computed from them as
//! metrics-server computes it: the rate of the cumulative CPU over the window between the
//! two points, the memory working set of the newer one.

use std::collections::{BTreeMap, HashMap, HashSet};

use parking_lot::RwLock;

use super::prometheus::{ContainerKey, Point, Scrape};

/// Usage over a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// The end of the window, in milliseconds since the epoch.
    pub timestamp_ms: i64,
    /// The window's length, in milliseconds.
    pub window_ms: i64,
    /// CPU used over the window, in nanocores.
    pub cpu_nanocores: u64,
    /// Memory working set at the end of the window, in bytes.
    pub memory_bytes: u64,
}

/// A pod's usage, container by container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodUsage {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// The newest end of its containers' windows.
    pub timestamp_ms: i64,
    /// The longest of its containers' windows.
    pub window_ms: i64,
    /// Each container's usage, by name.
    pub containers: Vec<(String, Usage)>,
}

/// A series' last two points.
#[derive(Debug, Clone, Copy, Default)]
struct Series {
    prev: Option<Point>,
    last: Option<Point>,
}

impl Series {
    /// Adds a newer point; a restarted container (another start time, or a counter that
    /// went back) starts over.
    fn push(&mut self, p: Point) {
        match self.last {
            Some(last) if p.timestamp_ms <= last.timestamp_ms => {}
            Some(last) if p.start_time != last.start_time || p.cpu_ns < last.cpu_ns => {
                self.prev = None;
                self.last = Some(p);
            }
            last => {
                self.prev = last;
                self.last = Some(p);
            }
        }
    }

    fn usage(&self) -> Option<Usage> {
        rate(self.prev.as_ref()?, self.last.as_ref()?)
    }
}

/// The usage between two points of one series: `None` when the window is empty or the
/// counter went back.
pub fn rate(prev: &Point, last: &Point) -> Option<Usage> {
    let window_ms = last.timestamp_ms - prev.timestamp_ms;
    if window_ms <= 0 || last.cpu_ns < prev.cpu_ns {
        return None;
    }
    let used = u128::from(last.cpu_ns - prev.cpu_ns);
    let nanocores = used * 1000 / u128::try_from(window_ms).ok()?;
    Some(Usage {
        timestamp_ms: last.timestamp_ms,
        window_ms,
        cpu_nanocores: u64::try_from(nanocores).unwrap_or(u64::MAX),
        memory_bytes: last.memory_bytes,
    })
}

#[derive(Debug, Default)]
struct NodeEntry {
    node: Series,
    containers: BTreeMap<ContainerKey, Series>,
}

/// Every node's and container's last points.
#[derive(Debug, Default)]
pub struct MetricsStore {
    nodes: RwLock<HashMap<String, NodeEntry>>,
}

impl MetricsStore {
    /// Records a node's scrape; the node's containers missing from it are forgotten.
    pub fn record(&self, node: &str, scrape: Scrape) {
        let mut nodes = self.nodes.write();
        let entry = nodes.entry(node.to_string()).or_default();
        if let Some(p) = scrape.node {
            entry.node.push(p);
        }
        let mut containers = BTreeMap::new();
        for (key, p) in scrape.containers {
            let mut series = entry.containers.remove(&key).unwrap_or_default();
            series.push(p);
            containers.insert(key, series);
        }
        entry.containers = containers;
    }

    /// Forgets the nodes not named.
    pub fn retain_nodes(&self, names: &HashSet<String>) {
        self.nodes.write().retain(|n, _| names.contains(n));
    }

    /// Each node's usage, by name.
    pub fn nodes(&self) -> BTreeMap<String, Usage> {
        self.nodes
            .read()
            .iter()
            .filter_map(|(n, e)| e.node.usage().map(|u| (n.clone(), u)))
            .collect()
    }

    /// Each pod's usage, where every one of its running containers has one, by namespace
    /// and name.
    pub fn pods(&self) -> Vec<PodUsage> {
        let nodes = self.nodes.read();
        let mut pods: BTreeMap<(String, String), Option<PodUsage>> = BTreeMap::new();
        for entry in nodes.values() {
            for ((ns, pod, container), series) in &entry.containers {
                let slot = pods.entry((ns.clone(), pod.clone())).or_insert_with(|| {
                    Some(PodUsage {
                        namespace: ns.clone(),
                        name: pod.clone(),
                        timestamp_ms: 0,
                        window_ms: 0,
                        containers: Vec::new(),
                    })
                });
                let Some(p) = slot else { continue };
                match series.usage() {
                    Some(u) => {
                        p.timestamp_ms = p.timestamp_ms.max(u.timestamp_ms);
                        p.window_ms = p.window_ms.max(u.window_ms);
                        p.containers.push((container.clone(), u));
                    }
                    // A container without a rate yet: the pod waits for the next scrape.
                    None => *slot = None,
                }
            }
        }
        pods.into_values().flatten().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(ts: i64, cpu: u64, mem: u64) -> Point {
        Point {
            timestamp_ms: ts,
            cpu_ns: cpu,
            memory_bytes: mem,
            start_time: Some(1.0),
        }
    }

    #[test]
    fn cpu_is_the_rate_of_the_counter_over_the_window() {
        // 0.75 s of CPU over 15 s: 50 millicores.
        let u = rate(
            &point(1_000, 250_000_000, 1),
            &point(16_000, 1_000_000_000, 7),
        )
        .expect("a rate");
        assert_eq!(
            u,
            Usage {
                timestamp_ms: 16_000,
                window_ms: 15_000,
                cpu_nanocores: 50_000_000,
                memory_bytes: 7
            }
        );
        assert_eq!(rate(&point(1_000, 5, 1), &point(1_000, 9, 1)), None);
        assert_eq!(rate(&point(1_000, 9, 1), &point(2_000, 5, 1)), None);
    }

    #[test]
    fn pods_are_reported_once_every_container_has_two_points() {
        let store = MetricsStore::default();
        let key = |c: &str| ("ns".to_string(), "p".to_string(), c.to_string());
        let scrape = |ts: i64, cpu: u64, with_b: bool| {
            let mut s = Scrape {
                node: Some(point(ts, cpu * 10, 100)),
                ..Default::default()
            };
            s.containers.insert(key("a"), point(ts, cpu, 10));
            if with_b {
                s.containers.insert(key("b"), point(ts, cpu * 2, 20));
            }
            s
        };
        store.record("n1", scrape(0, 0, true));
        assert!(store.nodes().is_empty());
        assert!(store.pods().is_empty());
        store.record("n1", scrape(10_000, 1_000_000_000, true));
        let nodes = store.nodes();
        assert_eq!(nodes["n1"].cpu_nanocores, 1_000_000_000);
        let pods = store.pods();
        assert_eq!(pods.len(), 1);
        assert_eq!(pods[0].window_ms, 10_000);
        let cpus: Vec<(String, u64)> = pods[0]
            .containers
            .iter()
            .map(|(n, u)| (n.clone(), u.cpu_nanocores))
            .collect();
        assert_eq!(
            cpus,
            [
                ("a".to_string(), 100_000_000),
                ("b".to_string(), 200_000_000)
            ]
        );
        // A container that went away is forgotten; a restarted one starts over.
        store.record("n1", scrape(20_000, 2_000_000_000, false));
        assert_eq!(store.pods()[0].containers.len(), 1);
        let mut restarted = scrape(30_000, 0, false);
        if let Some(p) = restarted.containers.get_mut(&key("a")) {
            p.start_time = Some(2.0);
        }
        store.record("n1", restarted);
        assert!(store.pods().is_empty());
        store.retain_nodes(&HashSet::new());
        assert!(store.nodes().is_empty());
    }
}

//! Reads the Prometheus text a kubelet serves on `/metrics/resource` into the points the
//! resource metrics are computed from, as metrics-server's decoder does: the cumulative
//! CPU and the working set of the node and of each container, with the time each sample
//! was taken.

use std::collections::BTreeMap;

/// One sample of a node or a container.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// When it was taken, in milliseconds since the epoch.
    pub timestamp_ms: i64,
    /// Cumulative CPU time, in nanoseconds.
    pub cpu_ns: u64,
    /// Memory working set, in bytes.
    pub memory_bytes: u64,
    /// When the container started, in seconds since the epoch (containers only).
    pub start_time: Option<f64>,
}

/// A container of a pod: namespace, pod, container.
pub type ContainerKey = (String, String, String);

/// What one scrape of a kubelet gave.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scrape {
    /// The node's point, when both its CPU and memory were reported.
    pub node: Option<Point>,
    /// Each container with both its CPU and memory reported.
    pub containers: BTreeMap<ContainerKey, Point>,
}

#[derive(Default)]
struct Partial {
    ts: Option<i64>,
    cpu: Option<u64>,
    mem: Option<u64>,
    start: Option<f64>,
}

impl Partial {
    fn point(&self, fallback_ts: i64) -> Option<Point> {
        Some(Point {
            timestamp_ms: self.ts.unwrap_or(fallback_ts),
            cpu_ns: self.cpu?,
            memory_bytes: self.mem?,
            start_time: self.start,
        })
    }
}

/// Parses the text; `now_ms` stands for samples that carry no time. Lines it does not
/// know are skipped; a sample with a value that is not a number is an error.
pub fn parse(text: &str, now_ms: i64) -> Result<Scrape, String> {
    let mut node = Partial::default();
    let mut containers: BTreeMap<ContainerKey, Partial> = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, labels, rest) = split_sample(line)?;
        let mut fields = rest.split_whitespace();
        let value: f64 = match fields.next() {
            Some(v) => parse_float(v).ok_or_else(|| format!("bad value in {line:?}"))?,
            None => return Err(format!("no value in {line:?}")),
        };
        let ts = match fields.next() {
            Some(t) => Some(
                t.parse::<i64>()
                    .map_err(|_| format!("bad timestamp in {line:?}"))?,
            ),
            None => None,
        };
        if !value.is_finite() || value < 0.0 {
            continue;
        }
        let target = match name {
            "node_cpu_usage_seconds_total" | "node_memory_working_set_bytes" => &mut node,
            "container_cpu_usage_seconds_total"
            | "container_memory_working_set_bytes"
            | "container_start_time_seconds" => {
                let get = |k: &str| labels.get(k).cloned().unwrap_or_default();
                let key = (get("namespace"), get("pod"), get("container"));
                if key.0.is_empty() || key.1.is_empty() || key.2.is_empty() {
                    continue;
                }
                containers.entry(key).or_default()
            }
            _ => continue,
        };
        match name {
            n if n.ends_with("cpu_usage_seconds_total") => {
                target.cpu = Some((value * 1e9).round() as u64);
                target.ts = ts.or(target.ts);
            }
            n if n.ends_with("memory_working_set_bytes") => {
                target.mem = Some(value.round() as u64);
                target.ts = target.ts.or(ts);
            }
            _ => target.start = Some(value),
        }
    }
    Ok(Scrape {
        node: node.point(now_ms),
        containers: containers
            .into_iter()
            .filter_map(|(k, p)| p.point(now_ms).map(|p| (k, p)))
            .collect(),
    })
}

/// Go's float syntax as Prometheus writes it (`1.5e+07`, `+Inf`, `NaN`).
fn parse_float(v: &str) -> Option<f64> {
    match v {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => v.parse().ok(),
    }
}

/// `name{k="v",…} rest` into its parts.
fn split_sample(line: &str) -> Result<(&str, BTreeMap<String, String>, &str), String> {
    let name_end = line
        .find(|c: char| c == '{' || c.is_whitespace())
        .ok_or_else(|| format!("no value in {line:?}"))?;
    let name = &line[..name_end];
    let mut labels = BTreeMap::new();
    let rest = &line[name_end..];
    let Some(body) = rest.strip_prefix('{') else {
        return Ok((name, labels, rest));
    };
    let mut chars = body.char_indices().peekable();
    loop {
        while chars
            .peek()
            .is_some_and(|(_, c)| *c == ',' || c.is_whitespace())
        {
            chars.next();
        }
        let Some(&(start, c)) = chars.peek() else {
            return Err(format!("unterminated labels in {line:?}"));
        };
        if c == '}' {
            return Ok((name, labels, &body[start + 1..]));
        }
        let eq = body[start..]
            .find('=')
            .ok_or_else(|| format!("bad label in {line:?}"))?
            + start;
        let key = body[start..eq].trim().to_string();
        while chars.peek().is_some_and(|(i, _)| *i <= eq) {
            chars.next();
        }
        if chars.next().map(|(_, c)| c) != Some('"') {
            return Err(format!("bad label value in {line:?}"));
        }
        let mut value = String::new();
        loop {
            match chars.next() {
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c)) => value.push(c),
                    None => return Err(format!("unterminated label value in {line:?}")),
                },
                Some((_, '"')) => break,
                Some((_, c)) => value.push(c),
                None => return Err(format!("unterminated label value in {line:?}")),
            }
        }
        labels.insert(key, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_kubelets_resource_metrics() {
        let text = r#"
# HELP container_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the container in core-seconds
# TYPE container_cpu_usage_seconds_total counter
container_cpu_usage_seconds_total{container="web",namespace="default",pod="a"} 2.366987173 1700000000123
container_cpu_usage_seconds_total{container="only-cpu",namespace="default",pod="a"} 1 1700000000123
# TYPE container_memory_working_set_bytes gauge
container_memory_working_set_bytes{container="web",namespace="default",pod="a"} 1.4716928e+07 1700000000123
container_start_time_seconds{container="web",namespace="default",pod="a"} 1.7e+09 1700000000123
container_memory_working_set_bytes{container="q\"x",namespace="n",pod="p, q"} 5 1700000000124
container_cpu_usage_seconds_total{namespace="n",pod="p, q",container="q\"x"} 0.5
node_cpu_usage_seconds_total 1234.5 1700000000100
node_memory_working_set_bytes 2.5e+09 1700000000100
pod_cpu_usage_seconds_total{namespace="default",pod="a"} 3 1700000000123
resource_scrape_error 0
"#;
        let s = parse(text, 42).expect("parsed");
        assert_eq!(
            s.node,
            Some(Point {
                timestamp_ms: 1_700_000_000_100,
                cpu_ns: 1_234_500_000_000,
                memory_bytes: 2_500_000_000,
                start_time: None,
            })
        );
        let key = |ns: &str, pod: &str, c: &str| (ns.to_string(), pod.to_string(), c.to_string());
        assert_eq!(
            s.containers.get(&key("default", "a", "web")),
            Some(&Point {
                timestamp_ms: 1_700_000_000_123,
                cpu_ns: 2_366_987_173,
                memory_bytes: 14_716_928,
                start_time: Some(1.7e9),
            })
        );
        let odd = s
            .containers
            .get(&key("n", "p, q", "q\"x"))
            .expect("escaped");
        assert_eq!((odd.cpu_ns, odd.memory_bytes), (500_000_000, 5));
        // Only what has both CPU and memory is a point.
        assert!(!s.containers.contains_key(&key("default", "a", "only-cpu")));
        assert_eq!(s.containers.len(), 2);
        assert!(parse("node_cpu_usage_seconds_total abc", 0).is_err());
        assert!(parse("x{a=\"b} 1", 0).is_err());
    }
}

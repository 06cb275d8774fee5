//! Results: a table for people and a JSON document for machines.

use std::time::Duration;

use serde::Serialize;

/// One measured figure.
#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    /// Section of the table (`footprint`, `startup`, `api`, `etcd`, `storage`).
    pub section: String,
    /// Stable identifier (`api.create.c8.per_s`).
    pub key: String,
    /// What it is, for the table.
    pub label: String,
    /// The value in `unit`.
    pub value: f64,
    /// Unit (`ops/s`, `ms`, `MiB`, `s`, `%`, `ratio`).
    pub unit: String,
}

/// Every figure of a run, in the order measured.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    /// The machine the figures came from.
    pub machine: String,
    /// The k1s version measured.
    pub k1s_version: String,
    /// The etcd version compared with, if any.
    pub etcd_version: Option<String>,
    /// The parameters of the run.
    pub parameters: serde_json::Value,
    /// The figures.
    pub figures: Vec<Figure>,
    /// The storage phase's samples over time.
    pub series: Vec<serde_json::Value>,
}

impl Report {
    /// Records a figure and prints it at once, so long runs show progress.
    pub fn add(&mut self, section: &str, key: &str, label: &str, value: f64, unit: &str) {
        eprintln!("  {label}: {}", format_value(value, unit));
        self.figures.push(Figure {
            section: section.into(),
            key: key.into(),
            label: label.into(),
            value,
            unit: unit.into(),
        });
    }

    /// Records a duration in milliseconds.
    pub fn add_ms(&mut self, section: &str, key: &str, label: &str, d: Duration) {
        self.add(section, key, label, d.as_secs_f64() * 1000.0, "ms");
    }

    /// Records a byte count in MiB.
    pub fn add_mib(&mut self, section: &str, key: &str, label: &str, bytes: u64) {
        self.add(section, key, label, bytes as f64 / 1024.0 / 1024.0, "MiB");
    }

    /// The value of a figure already recorded.
    pub fn get(&self, key: &str) -> Option<f64> {
        self.figures.iter().find(|f| f.key == key).map(|f| f.value)
    }

    /// The table: one line per figure, grouped by section.
    pub fn table(&self) -> String {
        let mut out = format!("{} on {}\n", self.k1s_version, self.machine);
        if let Some(v) = &self.etcd_version {
            out.push_str(&format!("compared with etcd {v}\n"));
        }
        let width = self
            .figures
            .iter()
            .map(|f| f.label.len())
            .max()
            .unwrap_or(10);
        // Sections in the order they first appear; figures in the order measured.
        let mut sections: Vec<&str> = Vec::new();
        for f in &self.figures {
            if !sections.contains(&f.section.as_str()) {
                sections.push(&f.section);
            }
        }
        for section in sections {
            out.push_str(&format!("\n{}\n", section.to_uppercase()));
            for f in self.figures.iter().filter(|f| f.section == section) {
                out.push_str(&format!(
                    "  {:<width$}  {:>12}\n",
                    f.label,
                    format_value(f.value, &f.unit)
                ));
            }
        }
        out
    }
}

/// A value with its unit, rounded for reading.
fn format_value(value: f64, unit: &str) -> String {
    match unit {
        "ratio" => format!("{value:.2}x"),
        "%" => format!("{value:.1} %"),
        "ops/s" | "objects/s" => format!("{value:.0} {unit}"),
        "ms" if value < 10.0 => format!("{value:.2} ms"),
        "ms" => format!("{value:.0} ms"),
        "MiB" => format!("{value:.1} MiB"),
        "s" => format!("{value:.2} s"),
        "us" => format!("{value:.1} us"),
        _ => format!("{value:.0} {unit}"),
    }
}

/// Latencies of one phase, for percentiles.
#[derive(Debug, Default)]
pub struct Latencies(Vec<Duration>);

impl Latencies {
    /// Adds one sample.
    pub fn push(&mut self, d: Duration) {
        self.0.push(d);
    }

    /// Adds the samples of another worker.
    pub fn extend(&mut self, other: Latencies) {
        self.0.extend(other.0);
    }

    /// The `q` quantile (0.5 = median), zero without samples.
    pub fn quantile(&mut self, q: f64) -> Duration {
        if self.0.is_empty() {
            return Duration::ZERO;
        }
        self.0.sort_unstable();
        let i = ((self.0.len() - 1) as f64 * q).round() as usize;
        self.0[i.min(self.0.len() - 1)]
    }

    /// The largest sample.
    pub fn max(&self) -> Duration {
        self.0.iter().copied().max().unwrap_or_default()
    }
}

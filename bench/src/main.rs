//! `k1s-bench`: measures a release `k1s server` — footprint, start-up, API throughput and
//! latency (side by side with etcd), list and watch fan-out, storage under churn, workloads
//! on simulated nodes, cluster DNS beside dnsmasq — and prints a table (optionally JSON). `scripts/bench` builds everything and runs it.

mod etcd;
mod ingress;
mod load;
mod network;
mod proc;
mod report;
mod scenarios;
mod server;
mod workloads;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, ValueEnum};

use crate::report::Report;

/// Parts of the benchmark that can be chosen with --only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Part {
    /// Binary size, idle and loaded memory and CPU, start-up on an empty and a full data dir.
    Footprint,
    /// ConfigMap creates/updates/gets/lists per second at each concurrency, lists of
    /// 10k and all objects, watch fan-out; etcd puts per second for comparison.
    Api,
    /// Lease and node-status churn: database and WAL size against live data, worst stall.
    Storage,
    /// Simulated nodes and many Deployments: pods scheduled per second, time until all
    /// are Available, pod start latency, server RSS and CPU.
    Workloads,
    /// Cluster DNS: queries/s and p99 with dnsperf, against dnsmasq serving the same names.
    Network,
}

/// Benchmarks of a release k1s server. Prints a table; --json writes every figure.
#[derive(Debug, Parser)]
#[command(name = "k1s-bench", version)]
pub struct Args {
    /// The k1s binary to measure (a release build).
    #[arg(long, default_value = "target/release/k1s")]
    pub k1s: PathBuf,
    /// Objects held by the server for the loaded figures (footprint, lists, restart).
    #[arg(long, default_value_t = 100_000)]
    pub objects: u64,
    /// Seconds each throughput phase runs.
    #[arg(long, default_value_t = 5)]
    pub seconds: u64,
    /// Concurrent clients of the throughput phases.
    #[arg(long, value_delimiter = ',', default_value = "1,8,64")]
    pub clients: Vec<usize>,
    /// Watchers for the fan-out figure.
    #[arg(long, default_value_t = 1000)]
    pub watchers: usize,
    /// Seconds of the idle windows that measure steady CPU and memory.
    #[arg(long, default_value_t = 10)]
    pub idle_seconds: u64,
    /// Writes of the storage churn (360000 = an hour at 100 writes/s).
    #[arg(long, default_value_t = 360_000)]
    pub churn_writes: u64,
    /// Simulated nodes of the workloads part.
    #[arg(long, default_value_t = 1000)]
    pub nodes: usize,
    /// Deployments the workloads part creates at once.
    #[arg(long, default_value_t = 300)]
    pub deployments: usize,
    /// Replicas of each of those Deployments.
    #[arg(long, default_value_t = 100)]
    pub replicas: i32,
    /// Seconds the workloads part waits for every Deployment to be Available.
    #[arg(long, default_value_t = 900)]
    pub workload_timeout: u64,
    /// ClusterIP Services the network part's DNS queries spread over.
    #[arg(long, default_value_t = 1000)]
    pub dns_services: usize,
    /// The etcd binary to compare with (Debian: apt-get install etcd-server).
    #[arg(long, default_value = "etcd")]
    pub etcd: PathBuf,
    /// Skip the etcd comparison.
    #[arg(long)]
    pub no_etcd: bool,
    /// Run only these parts (default: all).
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<Part>,
    /// Also write every figure as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Scratch folder for data dirs (default: a temp dir, removed afterwards).
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
}

impl Args {
    fn runs(&self, part: Part) -> bool {
        self.only.is_empty() || self.only.contains(&part)
    }

    /// The length of one throughput phase.
    pub fn phase(&self) -> Duration {
        Duration::from_secs(self.seconds)
    }
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("k1s-bench: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("k1s-bench: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    // kube's TLS needs a process-wide crypto provider; k1s uses ring.
    let _ = rustls::crypto::ring::default_provider().install_default();
    anyhow::ensure!(
        args.k1s.exists(),
        "{} not found: build it with `cargo build --release` (scripts/bench does)",
        args.k1s.display()
    );
    let scratch = match &args.work_dir {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            tempfile::tempdir_in(d)?
        }
        None => tempfile::tempdir()?,
    };
    let k1s_version = std::process::Command::new(&args.k1s)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .context("cannot run k1s --version")?;
    let mut report = Report {
        machine: proc::machine(),
        k1s_version,
        parameters: serde_json::json!({
            "objects": args.objects,
            "seconds_per_phase": args.seconds,
            "clients": args.clients,
            "watchers": args.watchers,
            "idle_seconds": args.idle_seconds,
            "churn_writes": args.churn_writes,
            "nodes": args.nodes,
            "deployments": args.deployments,
            "replicas": args.replicas,
            "dns_services": args.dns_services,
        }),
        ..Report::default()
    };
    if !args.no_etcd && args.runs(Part::Api) {
        report.etcd_version = Some(etcd::Etcd::version(&args.etcd).with_context(
            || "etcd is needed for the comparison (apt-get install etcd-server, or --no-etcd)",
        )?);
    }
    eprintln!("k1s-bench: {} on {}", report.k1s_version, report.machine);
    if args.runs(Part::Footprint) || args.runs(Part::Api) {
        scenarios::server_and_api(&args, scratch.path(), &mut report).await?;
    }
    if args.runs(Part::Api) && !args.no_etcd {
        scenarios::etcd_comparison(&args, scratch.path(), &mut report).await?;
    }
    if args.runs(Part::Storage) {
        scenarios::storage_churn(&args, scratch.path(), &mut report).await?;
    }
    if args.runs(Part::Workloads) {
        workloads::workloads(&args, scratch.path(), &mut report).await?;
    }
    if args.runs(Part::Network) {
        network::network(&args, scratch.path(), &mut report).await?;
    }
    println!("{}", report.table());
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("k1s-bench: wrote {}", path.display());
    }
    Ok(())
}

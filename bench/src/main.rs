//! `k1s-bench`: measures a release `k1s server` — footprint, start-up, API throughput and
//! latency (side by side with etcd), list and watch fan-out, storage under churn, workloads
//! on simulated nodes, cluster DNS beside dnsmasq, the agent running real pods on
//! containerd — and prints a table (optionally JSON). `scripts/bench` builds everything
//! and runs it.

mod agent;
mod etcd;
mod ingress;
mod load;
mod network;
mod proc;
mod proxy;
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
    /// Cluster DNS: queries/s and p99 with dnsperf, against dnsmasq serving the same names;
    /// the ingress against nginx with wrk; the Service proxy programming 1000 and 10 000
    /// Services and one endpoint change (root).
    Network,
    /// The network part's ingress figure alone (requests/s, p99 and CPU per request against
    /// nginx as the same reverse proxy).
    Ingress,
    /// The agent on containerd (root): node Ready after start, pod start latency of real
    /// containers, RSS of the server, containerd and shims with pods running.
    Agent,
    /// The agent alone (root): a `k1s agent` joined to a `k1s server --disable-agent` over
    /// HTTPS; its RSS idle with no pods and with --agent-join-pods pods, its containerd's.
    AgentJoin,
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
    /// Worker threads of the ingress proxy in the ingress figure (default: one per CPU, as
    /// `k1s server` runs it; 0: its connections on the driver's runtime, for comparison).
    #[arg(long)]
    pub ingress_workers: Option<usize>,
    /// Pods of the agent part's Deployment (start latency p50/p99).
    #[arg(long, default_value_t = 100)]
    pub agent_pods: usize,
    /// Pods the agent part starts one at a time before the Deployment (start latency
    /// p50/p99 of a pod created while the node is otherwise idle; they stay running).
    #[arg(long, default_value_t = 100)]
    pub agent_serial_pods: usize,
    /// Pods left running (the Deployment scaled down) when the agent part measures RSS.
    #[arg(long, default_value_t = 30)]
    pub agent_rss_pods: usize,
    /// Pods running when the agent-join part measures the joined agent's RSS.
    #[arg(long, default_value_t = 10)]
    pub agent_join_pods: usize,
    /// Seconds the agent part waits for the node or its pods before it gives up.
    #[arg(long, default_value_t = 300)]
    pub agent_timeout: u64,
    /// Folder with the test images (busybox.tar) for the agent part (default: the cache
    /// the e2e tests use; built with scripts/build-test-images when missing).
    #[arg(long)]
    pub test_images: Option<PathBuf>,
    /// Copy the agent part's server log here (its tracing, for profiling with K1S_LOG).
    #[arg(long)]
    pub agent_log: Option<PathBuf>,
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
            "agent_pods": args.agent_pods,
            "agent_serial_pods": args.agent_serial_pods,
            "agent_rss_pods": args.agent_rss_pods,
            "agent_join_pods": args.agent_join_pods,
            // Published by k3s (docs.k3s.io, Resource Profiling), not measured here.
            "k3s_published_mb": {"server_with_workload": 1596, "agent": 275},
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
        scenarios::k1s_on_etcd(&args, scratch.path(), &mut report).await?;
    }
    if args.runs(Part::Storage) {
        scenarios::storage_churn(&args, scratch.path(), &mut report).await?;
    }
    if args.runs(Part::Workloads) {
        workloads::workloads(&args, scratch.path(), &mut report).await?;
    }
    if args.runs(Part::Network) {
        network::network(&args, scratch.path(), &mut report).await?;
    } else if args.runs(Part::Ingress) {
        network::ingress_only(&args, scratch.path(), &mut report).await?;
    }
    if args.runs(Part::Agent) {
        let missing = agent::missing();
        if args.only.contains(&Part::Agent) || missing.is_empty() {
            agent::agent(&args, scratch.path(), &mut report).await?;
        } else {
            // A full run on a machine without them still gives the other parts.
            eprintln!(
                "k1s-bench: the agent part is NOT run: it needs {}",
                missing.join(", ")
            );
        }
    }
    if args.runs(Part::AgentJoin) {
        let missing = agent::missing();
        if args.only.contains(&Part::AgentJoin) || missing.is_empty() {
            agent::joined(&args, scratch.path(), &mut report).await?;
        } else {
            eprintln!(
                "k1s-bench: the agent-join part is NOT run: it needs {}",
                missing.join(", ")
            );
        }
    }
    println!("{}", report.table());
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("k1s-bench: wrote {}", path.display());
    }
    Ok(())
}

//! `k1s simulate nodes`: simulated nodes against any cluster, until SIGINT or SIGTERM.

use std::process::ExitCode;

use anyhow::Context;
use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::cli::simulate::{SimulateArgs, SimulateCommand, SimulateNodesArgs};

/// Runs the chosen simulation.
pub fn run(args: SimulateArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("k1s-simulate")
        .build()
        .context("cannot start the async runtime")?;
    match args.what {
        SimulateCommand::Nodes(nodes) => runtime.block_on(simulate_nodes(nodes)),
    }
}

async fn client(args: &SimulateNodesArgs) -> anyhow::Result<kube::Client> {
    // kube's TLS needs a process-wide crypto provider; another caller may have set it.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut config = match &args.kubeconfig {
        Some(path) => {
            let file = Kubeconfig::read_from(path)
                .with_context(|| format!("cannot read --kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(file, &KubeConfigOptions::default())
                .await
                .with_context(|| format!("unusable --kubeconfig {}", path.display()))?
        }
        None => kube::Config::infer()
            .await
            .context("no kubeconfig found: pass --kubeconfig")?,
    };
    if let Some(server) = &args.server {
        config.cluster_url = server
            .parse()
            .with_context(|| format!("invalid --server {server:?}"))?;
    }
    kube::Client::try_from(config).context("cannot build the API client")
}

async fn simulate_nodes(args: SimulateNodesArgs) -> anyhow::Result<ExitCode> {
    let client = client(&args).await?;
    let mut config = k1s_simulator::Config::new(args.count);
    config.name_prefix = args.name_prefix.clone();
    config.cluster_cidr = args.cluster_cidr;
    tracing::info!(count = args.count, prefix = %args.name_prefix, "starting simulated nodes");
    k1s_simulator::run(client, config, crate::run::server::shutdown_signal())
        .await
        .context("simulated nodes failed")?;
    Ok(ExitCode::SUCCESS)
}

//! `k1s datastore`: offline maintenance of the datastore.

use std::process::ExitCode;

use anyhow::Context;

use crate::cli::datastore::{DatastoreArgs, DatastoreCommand};
use crate::run::server::{default_data_dir, open_backend, sqlite_path};

/// Runs the chosen datastore subcommand.
pub fn run(args: DatastoreArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    match args.command {
        DatastoreCommand::Check(target) => runtime.block_on(async {
            let data_dir = target.data_dir.unwrap_or_else(default_data_dir);
            let file = sqlite_path(&data_dir);
            if target.datastore_endpoint.is_empty() && !file.exists() {
                anyhow::bail!("no datastore at {}: check --data-dir", file.display());
            }
            let backend = open_backend(&target.datastore_endpoint, &target.tls, &data_dir)?;
            let name = backend.info().name;
            let report = backend
                .check()
                .await
                .with_context(|| format!("cannot check {name}"))?;
            if report.problems.is_empty() {
                println!(
                    "{name}: ok (revision {}, {} live keys, {} log rows)",
                    report.revision, report.live_keys, report.rows
                );
                return Ok(ExitCode::SUCCESS);
            }
            println!("{name}: {} problem(s):", report.problems.len());
            for p in &report.problems {
                println!("  {p}");
            }
            Ok(ExitCode::FAILURE)
        }),
    }
}

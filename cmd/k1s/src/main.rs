//! k1s: a Kubernetes distribution in one binary. Parses the command line, sets up
//! logging and runs the chosen subcommand.

mod cli;
mod run;

use clap::Parser;

/// mimalloc: the server allocates and frees JSON trees for every request and watch
/// event; glibc's malloc spent about a quarter of the CPU on them under load and kept
/// freed memory in per-thread arenas.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("K1S_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(if cli.debug { "debug" } else { "info" })
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        cli::Command::Server(args) => run::server::run(*args),
        cli::Command::Kubectl(args) => run::kubectl::run(args),
        cli::Command::Datastore(args) => run::datastore::run(args),
        cli::Command::Image(args) => run::image::run(args),
        cli::Command::Killall(args) => run::killall::run(args),
        cli::Command::Simulate(args) => run::simulate::run(args),
        cli::Command::SecretsEncrypt(args) => run::secrets_encrypt::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("k1s: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

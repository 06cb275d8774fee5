//! `k1s kubectl`: kubectl with the server's kubeconfig.

use std::process::{Command, ExitCode};

use anyhow::Context;

use crate::cli::kubectl::KubectlArgs;

/// Where `k1s server` writes the kubeconfig by default.
const DEFAULT_KUBECONFIG: &str = "/etc/k1s/k1s.yaml";

/// Runs kubectl; its exit status becomes ours.
pub fn run(args: KubectlArgs) -> anyhow::Result<ExitCode> {
    let mut cmd = Command::new("kubectl");
    cmd.args(&args.args);
    // An explicit KUBECONFIG wins, as with `k3s kubectl`.
    if std::env::var_os("KUBECONFIG").is_none() {
        cmd.env("KUBECONFIG", DEFAULT_KUBECONFIG);
    }
    let status = cmd
        .status()
        .context("cannot run kubectl: is it installed and on PATH?")?;
    Ok(ExitCode::from(
        status.code().unwrap_or(1).clamp(0, 255) as u8
    ))
}

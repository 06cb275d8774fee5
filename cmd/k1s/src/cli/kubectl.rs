//! Flags of `k1s kubectl`.

use clap::Args;

/// Runs the kubectl found on PATH with the server's kubeconfig (like `k3s kubectl`).
#[derive(Debug, Args)]
#[command(disable_help_flag = true, trailing_var_arg = true)]
pub struct KubectlArgs {
    /// Arguments passed to kubectl unchanged (e.g. `get pods -A`).
    #[arg(allow_hyphen_values = true)]
    pub args: Vec<String>,
}

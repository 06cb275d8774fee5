//! Flags of `k1s secrets-encrypt` (k3s's command of that name).

use std::path::PathBuf;

use clap::{Args, Subcommand};

/// Secrets encryption at rest: the keys in `<data-dir>/server/cred/encryption-config.json`.
#[derive(Debug, Args)]
pub struct SecretsEncryptArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: SecretsEncryptCommand,
    /// The server's data dir (default /var/lib/k1s as root, ~/.k1s otherwise).
    #[arg(long, short = 'd', env = "K1S_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
}

/// `k1s secrets-encrypt` subcommands.
#[derive(Debug, Subcommand)]
pub enum SecretsEncryptCommand {
    /// Print whether Secrets are encrypted and the keys, the active one marked.
    Status,
    /// Add a new key that encrypts from the server's next start; the old keys stay so
    /// Secrets written with them remain readable (each is re-encrypted when next written).
    Rotate,
}

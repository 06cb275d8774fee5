//! Secrets encryption at rest: the configuration under the data dir (k3s's layout and
//! upstream's EncryptionConfiguration), the store wrapper at server start, and
//! `k1s secrets-encrypt status|rotate`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use k1s_store::Backend;
use k1s_store::encryption::{EncryptingBackend, EncryptionConfig, Provider, generate_key};
use serde_json::{Value, json};

use crate::cli::secrets_encrypt::{SecretsEncryptArgs, SecretsEncryptCommand};

/// Where k3s keeps the encryption configuration, under the data dir.
pub(crate) fn config_path(data_dir: &Path) -> PathBuf {
    data_dir
        .join("server")
        .join("cred")
        .join("encryption-config.json")
}

fn write_config(path: &Path, doc: &Value) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let tmp = path.with_extension("json.tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    f.write_all(serde_json::to_string_pretty(doc)?.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

fn new_config(provider: &str) -> Value {
    json!({
        "kind": "EncryptionConfiguration",
        "apiVersion": "apiserver.config.k8s.io/v1",
        "resources": [{
            "resources": ["secrets"],
            "providers": [
                {provider: {"keys": [{"name": format!("{provider}key"), "secret": generate_key()}]}},
                {"identity": {}}
            ]
        }]
    })
}

/// Wraps the datastore so Secrets are encrypted: with `--secrets-encryption` the
/// configuration is read (made on first start, with one `provider` key); without it, an
/// existing configuration still decrypts what it encrypted while new writes stay
/// plaintext.
pub(crate) fn wrap(
    backend: Arc<dyn Backend>,
    enabled: bool,
    provider: &str,
    data_dir: &Path,
) -> anyhow::Result<Arc<dyn Backend>> {
    let path = config_path(data_dir);
    if !path.exists() {
        if !enabled {
            return Ok(backend);
        }
        write_config(&path, &new_config(provider))?;
        tracing::info!(path = %path.display(), provider, "secrets encryption key created");
    }
    let bytes = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut config = EncryptionConfig::from_json(&bytes)
        .with_context(|| format!("cannot use {}", path.display()))?;
    if !enabled {
        tracing::warn!(path = %path.display(), "--secrets-encryption is off: Secrets are written in plaintext, encrypted ones are still read");
        config.providers.insert(0, Provider::Identity);
    }
    Ok(Arc::new(EncryptingBackend::new(backend, config)))
}

/// Runs `k1s secrets-encrypt`.
pub fn run(args: SecretsEncryptArgs) -> anyhow::Result<ExitCode> {
    let data_dir = args
        .data_dir
        .clone()
        .unwrap_or_else(crate::run::server::default_data_dir);
    let path = config_path(&data_dir);
    match args.command {
        SecretsEncryptCommand::Status => {
            if !path.exists() {
                println!("Encryption Status: Disabled, no configuration file found");
                return Ok(ExitCode::SUCCESS);
            }
            let config = EncryptionConfig::from_json(&std::fs::read(&path)?)
                .with_context(|| format!("cannot use {}", path.display()))?;
            let active = config.providers.first().map(Provider::name);
            println!(
                "Encryption Status: {}",
                if active == Some("identity") {
                    "Disabled"
                } else {
                    "Enabled"
                }
            );
            println!();
            println!("Active  Key Type  Name");
            println!("------  --------  ----");
            let mut first = true;
            for p in &config.providers {
                let kind = match p {
                    Provider::AesCbc(_) => "AES-CBC",
                    Provider::Secretbox(_) => "SecretBox",
                    Provider::Identity => "Identity",
                };
                let names = match p {
                    Provider::Identity => vec!["-".to_string()],
                    _ => p.key_names(),
                };
                for name in names {
                    println!(" {:<7}{kind:<10}{name}", if first { "*" } else { "" });
                    first = false;
                }
            }
        }
        SecretsEncryptCommand::Rotate => {
            let bytes = std::fs::read(&path).with_context(|| {
                format!(
                    "cannot read {}: start the server with --secrets-encryption first",
                    path.display()
                )
            })?;
            // Checked first, so a broken file is not rewritten.
            EncryptionConfig::from_json(&bytes)
                .with_context(|| format!("cannot use {}", path.display()))?;
            let mut doc: Value = serde_json::from_slice(&bytes)?;
            let providers = doc
                .pointer_mut("/resources/0/providers")
                .and_then(Value::as_array_mut)
                .context("the configuration has no providers")?;
            let slot = providers
                .iter_mut()
                .find_map(|p| {
                    ["aescbc", "secretbox"]
                        .into_iter()
                        .find(|k| p.get(*k).is_some())
                        .map(|k| (k, p))
                })
                .context("the configuration has no aescbc or secretbox provider")?;
            let (kind, provider) = slot;
            let name = format!(
                "{kind}key-{}",
                jiff::Timestamp::now().strftime("%Y%m%dT%H%M%SZ")
            );
            let keys = provider[kind]["keys"]
                .as_array_mut()
                .context("the provider has no keys")?;
            keys.insert(0, json!({"name": name, "secret": generate_key()}));
            write_config(&path, &doc)?;
            println!("keys rotated: {name} encrypts from the server's next start");
        }
    }
    Ok(ExitCode::SUCCESS)
}

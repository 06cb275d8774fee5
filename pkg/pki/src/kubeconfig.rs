//! Kubeconfig files with embedded credentials, shaped like k3s's `/etc/rancher/k3s/k3s.yaml`.

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::PkiError;
use crate::fs::{ensure_parent, write_atomic};

/// A kubeconfig whose cluster, user and context are all named `default`, with the CA, client
/// certificate and client key embedded as base64 data, exactly as k3s writes `k3s.yaml`
/// (client-go's field order, so tools that diff it see nothing unusual).
pub fn kubeconfig(
    server_url: &str,
    ca_pem: &str,
    client_cert_pem: &str,
    client_key_pem: &str,
) -> String {
    let ca = STANDARD.encode(ca_pem);
    let cert = STANDARD.encode(client_cert_pem);
    let key = STANDARD.encode(client_key_pem);
    let server = yaml_scalar(server_url);
    format!(
        "apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: {ca}
    server: {server}
  name: default
contexts:
- context:
    cluster: default
    user: default
  name: default
current-context: default
kind: Config
preferences: {{}}
users:
- name: default
  user:
    client-certificate-data: {cert}
    client-key-data: {key}
"
    )
}

/// Writes a kubeconfig to `path` atomically with permissions `mode` (k3s's
/// `--write-kubeconfig-mode`, 0600 by default), creating missing parent directories.
pub fn write_kubeconfig(path: &Path, contents: &str, mode: u32) -> Result<(), PkiError> {
    ensure_parent(path)?;
    write_atomic(path, contents.as_bytes(), mode)
}

/// A URL as a YAML scalar: plain when that reads back unchanged, double-quoted otherwise.
fn yaml_scalar(s: &str) -> String {
    let plain_ok = !s.is_empty()
        && s.chars().all(|c| c.is_ascii_graphic())
        && !s.contains(": ")
        && !s.contains(" #")
        && !s.ends_with(':')
        && !s.starts_with(|c: char| "-?:,[]{}#&*!|>'\"%@`".contains(c));
    if plain_ok {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn kubeconfig_matches_k3s_layout() {
        // kubectl, helm and k3s-aware tools read this file; its shape is k3s's k3s.yaml.
        let got = kubeconfig("https://127.0.0.1:6443", "CA", "CERT", "KEY");
        let want = "apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: Q0E=
    server: https://127.0.0.1:6443
  name: default
contexts:
- context:
    cluster: default
    user: default
  name: default
current-context: default
kind: Config
preferences: {}
users:
- name: default
  user:
    client-certificate-data: Q0VSVA==
    client-key-data: S0VZ
";
        assert_eq!(got, want);
    }

    #[test]
    fn ipv6_server_url_stays_plain_and_odd_urls_are_quoted() {
        assert_eq!(yaml_scalar("https://[::1]:6443"), "https://[::1]:6443");
        assert_eq!(yaml_scalar("https://x #y"), "\"https://x #y\"");
    }

    #[test]
    fn write_kubeconfig_creates_parents_and_applies_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("etc/rancher/k1s/k1s.yaml");
        write_kubeconfig(&path, "x", 0o644).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "x");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);
    }
}

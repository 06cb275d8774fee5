//! Pulls from OCI registries with `oci-client` (the ORAS project's distribution client):
//! manifest (an index resolved to this node's platform), config and layers into the content
//! store, an image record, layers unpacked. Mirrors, insecure (http) endpoints, TLS
//! verification and credentials come from `<data-dir>/registries.yaml` as k3s reads it;
//! `imagePullSecrets` credentials win for their registry.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use containerd_client::types::Descriptor;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::manifest::OciDescriptor;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use serde::Deserialize;
use serde_json::Value;

use super::images::{descriptor, gc_labels, is_index, pick_platform};
use super::{ContainerdRuntime, new_id, rt_err};
use crate::runtime::{RegistryCredential, RuntimeError, RuntimeResult};

const ACCEPTED: &[&str] = &[
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];

/// `registries.yaml`, the parts k1s reads (k3s's format).
#[derive(Debug, Default, Deserialize)]
pub struct Registries {
    /// Registry host (or `*`) → the endpoints to try before the registry itself.
    #[serde(default)]
    pub mirrors: HashMap<String, Mirror>,
    /// Endpoint host → auth and TLS settings.
    #[serde(default)]
    pub configs: HashMap<String, HostConfig>,
}

/// One mirror entry.
#[derive(Debug, Default, Deserialize)]
pub struct Mirror {
    /// URLs (`https://mirror.example`, `http://127.0.0.1:5000`).
    #[serde(default)]
    pub endpoint: Vec<String>,
}

/// Settings for one endpoint host.
#[derive(Debug, Default, Deserialize)]
pub struct HostConfig {
    /// Credentials.
    #[serde(default)]
    pub auth: Option<HostAuth>,
    /// TLS settings.
    #[serde(default)]
    pub tls: Option<HostTls>,
}

/// Credentials in registries.yaml.
#[derive(Debug, Default, Deserialize)]
pub struct HostAuth {
    /// User name.
    #[serde(default)]
    pub username: String,
    /// Password.
    #[serde(default)]
    pub password: String,
    /// A bearer token.
    #[serde(default)]
    pub identitytoken: String,
}

/// TLS settings in registries.yaml.
#[derive(Debug, Default, Deserialize)]
pub struct HostTls {
    /// Skip certificate verification.
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

/// Reads registries.yaml; absent means no mirrors.
pub fn load_registries(path: Option<&Path>) -> RuntimeResult<Registries> {
    let Some(path) = path else {
        return Ok(Registries::default());
    };
    match std::fs::read_to_string(path) {
        Ok(text) if text.trim().is_empty() => Ok(Registries::default()),
        Ok(text) => {
            serde_saphyr::from_str(&text).map_err(|e| rt_err(format!("{}: {e}", path.display())))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Registries::default()),
        Err(e) => Err(rt_err(format!("{}: {e}", path.display()))),
    }
}

/// The endpoints to try for a registry, in order: its mirrors, then itself (https).
fn endpoints(registries: &Registries, registry: &str) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    let mirror = registries
        .mirrors
        .get(registry)
        .or_else(|| registries.mirrors.get("*"));
    for url in mirror.map(|m| m.endpoint.as_slice()).unwrap_or_default() {
        let (host, insecure) = match url.split_once("://") {
            Some(("http", rest)) => (rest, true),
            Some((_, rest)) => (rest, false),
            None => (url.as_str(), false),
        };
        out.push((
            host.trim_end_matches('/')
                .split('/')
                .next()
                .unwrap_or_default()
                .to_string(),
            insecure,
        ));
    }
    if !out.iter().any(|(h, _)| h == registry) {
        out.push((registry.to_string(), false));
    }
    out
}

fn auth_for(
    registries: &Registries,
    host: &str,
    registry: &str,
    credentials: &[RegistryCredential],
) -> RegistryAuth {
    let matches = |server: &str| {
        let s = server
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .trim_end_matches('/');
        let s = s.split('/').next().unwrap_or_default();
        s == host
            || s == registry
            || (registry == "docker.io" && (s == "index.docker.io" || s == "registry-1.docker.io"))
    };
    if let Some(c) = credentials.iter().find(|c| matches(&c.server)) {
        return RegistryAuth::Basic(c.username.clone(), c.password.clone());
    }
    match registries.configs.get(host).and_then(|c| c.auth.as_ref()) {
        Some(a) if !a.identitytoken.is_empty() => RegistryAuth::Bearer(a.identitytoken.clone()),
        Some(a) if !a.username.is_empty() => {
            RegistryAuth::Basic(a.username.clone(), a.password.clone())
        }
        _ => RegistryAuth::Anonymous,
    }
}

pub(crate) async fn pull(
    rt: &ContainerdRuntime,
    image: &str,
    name: &str,
    credentials: &[RegistryCredential],
) -> RuntimeResult<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let registries = load_registries(rt.inner.registries.as_deref())?;
    let parsed = super::reference::ImageReference::parse(name)
        .map_err(|_| RuntimeError::InvalidImageName(image.to_string()))?;
    // Built from its parts: oci-client's own parser compiles a large regular expression and
    // keeps it for the life of the process.
    let reference = match (parsed.tag, parsed.digest) {
        (Some(tag), Some(digest)) => {
            Reference::with_tag_and_digest(parsed.registry, parsed.repository, tag, digest)
        }
        (None, Some(digest)) => Reference::with_digest(parsed.registry, parsed.repository, digest),
        (tag, None) => Reference::with_tag(
            parsed.registry,
            parsed.repository,
            tag.unwrap_or_else(|| "latest".to_string()),
        ),
    };
    let registry = reference.registry().to_string();
    let mut last = String::from("no endpoint to pull from");
    for (host, insecure) in endpoints(&registries, &registry) {
        let skip_verify = registries
            .configs
            .get(&host)
            .and_then(|c| c.tls.as_ref())
            .is_some_and(|t| t.insecure_skip_verify);
        let client = Client::new(ClientConfig {
            protocol: if insecure {
                ClientProtocol::HttpsExcept(vec![host.clone()])
            } else {
                ClientProtocol::Https
            },
            accept_invalid_certificates: skip_verify,
            ..Default::default()
        });
        let mut at = reference.clone();
        if host != registry {
            at.set_mirror_registry(host.clone());
        }
        let auth = auth_for(&registries, &host, &registry, credentials);
        match pull_from(rt, &client, &at, &auth, name).await {
            Ok(()) => return Ok(()),
            Err(e) => {
                tracing::debug!(%name, endpoint = %host, "pull failed: {e}");
                last = e;
            }
        }
    }
    Err(RuntimeError::Pull {
        image: image.to_string(),
        message: format!("failed to pull and unpack image \"{name}\": {last}"),
    })
}

fn oci_desc(d: &Descriptor) -> OciDescriptor {
    OciDescriptor {
        media_type: d.media_type.clone(),
        digest: d.digest.clone(),
        size: d.size,
        ..Default::default()
    }
}

/// Pulls into a scratch dir, then stores; errors are the message of an ErrImagePull.
async fn pull_from(
    rt: &ContainerdRuntime,
    client: &Client,
    at: &Reference,
    auth: &RegistryAuth,
    name: &str,
) -> Result<(), String> {
    let scratch = rt.inner.state_dir.join(format!("pull-{}", &new_id()[..16]));
    tokio::fs::create_dir_all(&scratch)
        .await
        .map_err(|e| e.to_string())?;
    let result = pull_into(rt, client, at, auth, name, &scratch).await;
    let _ = tokio::fs::remove_dir_all(&scratch).await;
    result
}

async fn pull_into(
    rt: &ContainerdRuntime,
    client: &Client,
    at: &Reference,
    auth: &RegistryAuth,
    name: &str,
    scratch: &Path,
) -> Result<(), String> {
    let (bytes, digest) = client
        .pull_manifest_raw(at, auth, ACCEPTED)
        .await
        .map_err(|e| format!("failed to resolve reference \"{name}\": {e}"))?;
    let top_json: Value =
        serde_json::from_slice(&bytes).map_err(|e| format!("bad manifest: {e}"))?;
    let top_type = top_json
        .get("mediaType")
        .and_then(Value::as_str)
        .unwrap_or(ACCEPTED[1])
        .to_string();
    let mut blobs: Vec<(String, PathBuf, HashMap<String, String>)> = Vec::new();
    let save = |digest: &str, data: &[u8]| -> Result<PathBuf, String> {
        let p = scratch.join(digest.replace(':', "-"));
        std::fs::write(&p, data).map_err(|e| e.to_string())?;
        Ok(p)
    };
    let top = Descriptor {
        media_type: top_type.clone(),
        digest: digest.clone(),
        size: i64::try_from(bytes.len()).unwrap_or(0),
        annotations: HashMap::new(),
    };
    let mut manifest = top_json.clone();
    let mut parents = vec![(digest.clone(), save(&digest, &bytes)?, gc_labels(&top_json))];
    if is_index(&top_type, &top_json) {
        let manifests = top_json
            .get("manifests")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let child = pick_platform(&manifests)
            .and_then(descriptor)
            .ok_or_else(|| "no manifest for this platform".to_string())?;
        let (child_bytes, child_digest) = client
            .pull_manifest_raw(&at.clone_with_digest(child.digest.clone()), auth, ACCEPTED)
            .await
            .map_err(|e| format!("failed to resolve reference \"{name}\": {e}"))?;
        manifest =
            serde_json::from_slice(&child_bytes).map_err(|e| format!("bad manifest: {e}"))?;
        parents.insert(
            0,
            (
                child_digest.clone(),
                save(&child_digest, &child_bytes)?,
                gc_labels(&manifest),
            ),
        );
    }
    let mut wanted: Vec<Descriptor> = manifest
        .get("config")
        .and_then(descriptor)
        .into_iter()
        .collect();
    wanted.extend(
        manifest
            .get("layers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(descriptor),
    );
    for d in wanted {
        let path = scratch.join(d.digest.replace(':', "-"));
        let file = tokio::fs::File::create(&path)
            .await
            .map_err(|e| e.to_string())?;
        client
            .pull_blob(at, &oci_desc(&d), file)
            .await
            .map_err(|e| format!("failed to copy {}: {e}", d.digest))?;
        blobs.push((d.digest.clone(), path, HashMap::new()));
    }
    blobs.extend(parents);
    let lease = rt.lease().await.map_err(|e| e.to_string())?;
    let stored = async {
        for (digest, path, labels) in blobs {
            rt.write_blob(&lease, &digest, &path, labels).await?;
        }
        rt.put_image(&lease, name, &top).await?;
        let resolved = rt.resolve(name, &top).await?;
        rt.unpack(&resolved).await?;
        Ok::<(), RuntimeError>(())
    }
    .await;
    rt.end_lease(&lease).await;
    stored.map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registries_yaml_as_k3s_reads_it() {
        let text = "mirrors:\n  docker.io:\n    endpoint:\n      - \"http://127.0.0.1:5000\"\nconfigs:\n  \"127.0.0.1:5000\":\n    auth:\n      username: u\n      password: p\n    tls:\n      insecure_skip_verify: true\n";
        let r: Registries = serde_saphyr::from_str(text).expect("parse");
        assert_eq!(
            endpoints(&r, "docker.io"),
            vec![
                ("127.0.0.1:5000".to_string(), true),
                ("docker.io".to_string(), false)
            ]
        );
        assert!(
            matches!(auth_for(&r, "127.0.0.1:5000", "docker.io", &[]), RegistryAuth::Basic(u, _) if u == "u")
        );
        let creds = [RegistryCredential {
            server: "https://index.docker.io/v1/".into(),
            username: "x".into(),
            password: "y".into(),
        }];
        assert!(
            matches!(auth_for(&r, "docker.io", "docker.io", &creds), RegistryAuth::Basic(u, _) if u == "x")
        );
    }
}

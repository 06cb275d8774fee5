//! Encryption at rest: values under chosen key prefixes (Secrets) are encrypted before the
//! backend stores them and decrypted as they are read, listed or watched, so everything
//! above the store (the watch cache, the registry) sees plaintext while the database
//! holds ciphertext. The configuration is upstream's `EncryptionConfiguration`
//! (`apiserver.config.k8s.io/v1`, JSON) with the `aescbc`, `secretbox` and `identity`
//! providers; values carry upstream's prefix `k8s:enc:<provider>:v1:<key name>:`.

use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine;
use bytes::Bytes;
use rand::RngCore;
use serde_json::Value;

use crate::{
    Backend, BackendInfo, CheckReport, Event, EventSink, KeyValue, ListPage, Revision, StoreError,
    WriteOp,
};

/// Why an encryption configuration or a value could not be used.
#[derive(Debug, thiserror::Error)]
pub enum EncryptionError {
    /// The configuration file is not a valid EncryptionConfiguration.
    #[error("invalid encryption configuration: {0}")]
    Config(String),
    /// A stored value could not be decrypted.
    #[error("cannot decrypt value: {0}")]
    Decrypt(String),
}

/// One encryption provider of the configuration, in order.
#[derive(Clone)]
pub enum Provider {
    /// AES-CBC with PKCS#7 padding and a random IV; keys of 16, 24 or 32 bytes.
    AesCbc(Vec<(String, Vec<u8>)>),
    /// XSalsa20-Poly1305 (NaCl secretbox) with a random nonce; 32-byte keys.
    Secretbox(Vec<(String, Vec<u8>)>),
    /// No encryption: values are stored as they are.
    Identity,
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Key material stays out of logs.
        let names =
            |keys: &[(String, Vec<u8>)]| keys.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
        match self {
            Provider::AesCbc(k) => write!(f, "aescbc{:?}", names(k)),
            Provider::Secretbox(k) => write!(f, "secretbox{:?}", names(k)),
            Provider::Identity => write!(f, "identity"),
        }
    }
}

impl Provider {
    /// The provider's name in the configuration and in stored values.
    pub fn name(&self) -> &'static str {
        match self {
            Provider::AesCbc(_) => "aescbc",
            Provider::Secretbox(_) => "secretbox",
            Provider::Identity => "identity",
        }
    }

    /// The key names, the first being the one that encrypts.
    pub fn key_names(&self) -> Vec<String> {
        match self {
            Provider::AesCbc(k) | Provider::Secretbox(k) => {
                k.iter().map(|(n, _)| n.clone()).collect()
            }
            Provider::Identity => Vec::new(),
        }
    }
}

/// The parsed configuration: which key prefixes are encrypted and how.
#[derive(Debug, Clone)]
pub struct EncryptionConfig {
    /// Store key prefixes whose values are encrypted (`/registry/secrets/`).
    pub prefixes: Vec<String>,
    /// Providers in order: the first encrypts, every one may decrypt.
    pub providers: Vec<Provider>,
}

fn keys_of(provider: &Value, kind: &str) -> Result<Vec<(String, Vec<u8>)>, EncryptionError> {
    let keys = provider
        .get("keys")
        .and_then(Value::as_array)
        .filter(|k| !k.is_empty())
        .ok_or_else(|| EncryptionError::Config(format!("{kind}: keys must be given")))?;
    let mut out = Vec::new();
    for k in keys {
        let name = k.get("name").and_then(Value::as_str).unwrap_or_default();
        if name.is_empty() || name.contains(':') {
            return Err(EncryptionError::Config(format!(
                "{kind}: key name {name:?} must be non-empty and contain no ':'"
            )));
        }
        let secret = k.get("secret").and_then(Value::as_str).unwrap_or_default();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(secret)
            .map_err(|e| EncryptionError::Config(format!("{kind}: key {name:?}: {e}")))?;
        let ok = match kind {
            "aescbc" => matches!(bytes.len(), 16 | 24 | 32),
            _ => bytes.len() == 32,
        };
        if !ok {
            return Err(EncryptionError::Config(format!(
                "{kind}: key {name:?} has a wrong length ({} bytes)",
                bytes.len()
            )));
        }
        out.push((name.to_string(), bytes));
    }
    Ok(out)
}

impl EncryptionConfig {
    /// Parses an `EncryptionConfiguration` (JSON). Resources are core resources by plural
    /// name (`secrets`, `configmaps`).
    pub fn from_json(bytes: &[u8]) -> Result<Self, EncryptionError> {
        let doc: Value =
            serde_json::from_slice(bytes).map_err(|e| EncryptionError::Config(e.to_string()))?;
        if doc.get("kind").and_then(Value::as_str) != Some("EncryptionConfiguration") {
            return Err(EncryptionError::Config(
                "kind must be EncryptionConfiguration".into(),
            ));
        }
        let mut prefixes = Vec::new();
        let mut providers = Vec::new();
        for entry in doc
            .get("resources")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            for r in entry
                .get("resources")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                if r.contains('.') || r.contains('*') || r.is_empty() {
                    return Err(EncryptionError::Config(format!(
                        "resource {r:?}: only core resources by name are supported"
                    )));
                }
                prefixes.push(format!("/registry/{r}/"));
            }
            // One provider list for every resource: the first entry's.
            if !providers.is_empty() {
                continue;
            }
            for p in entry
                .get("providers")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let provider = if let Some(a) = p.get("aescbc") {
                    Provider::AesCbc(keys_of(a, "aescbc")?)
                } else if let Some(s) = p.get("secretbox") {
                    Provider::Secretbox(keys_of(s, "secretbox")?)
                } else if p.get("identity").is_some() {
                    Provider::Identity
                } else {
                    return Err(EncryptionError::Config(format!("unsupported provider {p}")));
                };
                providers.push(provider);
            }
        }
        if providers.is_empty() {
            return Err(EncryptionError::Config("no providers given".into()));
        }
        Ok(Self {
            prefixes,
            providers,
        })
    }

    /// Whether values of `key` are encrypted.
    pub fn covers(&self, key: &str) -> bool {
        self.prefixes.iter().any(|p| key.starts_with(p))
    }

    /// Encrypts with the first provider's first key.
    pub fn encrypt(&self, plain: &[u8]) -> Bytes {
        let mut out = Vec::new();
        match self.providers.first() {
            Some(Provider::AesCbc(keys)) if !keys.is_empty() => {
                let (name, key) = &keys[0];
                let mut iv = [0u8; 16];
                rand::rng().fill_bytes(&mut iv);
                out.extend_from_slice(format!("k8s:enc:aescbc:v1:{name}:").as_bytes());
                out.extend_from_slice(&iv);
                out.extend_from_slice(&aes_cbc_encrypt(key, &iv, plain));
            }
            Some(Provider::Secretbox(keys)) if !keys.is_empty() => {
                use crypto_secretbox::aead::{Aead, KeyInit};
                let (name, key) = &keys[0];
                let mut nonce = [0u8; 24];
                rand::rng().fill_bytes(&mut nonce);
                let cipher =
                    crypto_secretbox::XSalsa20Poly1305::new(crypto_secretbox::Key::from_slice(key));
                let Ok(sealed) = cipher.encrypt(crypto_secretbox::Nonce::from_slice(&nonce), plain)
                else {
                    return Bytes::copy_from_slice(plain);
                };
                out.extend_from_slice(format!("k8s:enc:secretbox:v1:{name}:").as_bytes());
                out.extend_from_slice(&nonce);
                out.extend_from_slice(&sealed);
            }
            _ => return Bytes::copy_from_slice(plain),
        }
        Bytes::from(out)
    }

    /// Decrypts a stored value; one without the `k8s:enc:` prefix is plaintext (written
    /// before encryption was on, or by the identity provider).
    pub fn decrypt(&self, stored: &[u8]) -> Result<Bytes, EncryptionError> {
        let Some(rest) = stored.strip_prefix(b"k8s:enc:") else {
            return Ok(Bytes::copy_from_slice(stored));
        };
        let mut parts = rest.splitn(4, |b| *b == b':');
        let provider = parts.next().unwrap_or_default();
        let _version = parts.next();
        let name = parts.next().unwrap_or_default();
        let data = parts.next().unwrap_or_default();
        let name = std::str::from_utf8(name).unwrap_or_default();
        let find = |keys: &[(String, Vec<u8>)]| {
            keys.iter().find(|(n, _)| n == name).map(|(_, k)| k.clone())
        };
        let key = self.providers.iter().find_map(|p| match (p, provider) {
            (Provider::AesCbc(k), b"aescbc") | (Provider::Secretbox(k), b"secretbox") => find(k),
            _ => None,
        });
        let Some(key) = key else {
            return Err(EncryptionError::Decrypt(format!(
                "no key named {name:?} for provider {:?}",
                String::from_utf8_lossy(provider)
            )));
        };
        match provider {
            b"aescbc" => {
                if data.len() < 16 {
                    return Err(EncryptionError::Decrypt("value too short".into()));
                }
                let (iv, ct) = data.split_at(16);
                aes_cbc_decrypt(&key, iv, ct).map(Bytes::from)
            }
            _ => {
                use crypto_secretbox::aead::{Aead, KeyInit};
                if data.len() < 24 {
                    return Err(EncryptionError::Decrypt("value too short".into()));
                }
                let (nonce, sealed) = data.split_at(24);
                let cipher = crypto_secretbox::XSalsa20Poly1305::new(
                    crypto_secretbox::Key::from_slice(&key),
                );
                cipher
                    .decrypt(crypto_secretbox::Nonce::from_slice(nonce), sealed)
                    .map(Bytes::from)
                    .map_err(|_| {
                        EncryptionError::Decrypt("secretbox: authentication failed".into())
                    })
            }
        }
    }
}

fn aes_cbc_encrypt(key: &[u8], iv: &[u8; 16], plain: &[u8]) -> Vec<u8> {
    use aes::cipher::{BlockEncryptMut, KeyIvInit, block_padding::Pkcs7};
    // Key lengths are checked when the configuration is read.
    match key.len() {
        16 => cbc::Encryptor::<aes::Aes128>::new_from_slices(key, iv)
            .map(|c| c.encrypt_padded_vec_mut::<Pkcs7>(plain))
            .unwrap_or_default(),
        24 => cbc::Encryptor::<aes::Aes192>::new_from_slices(key, iv)
            .map(|c| c.encrypt_padded_vec_mut::<Pkcs7>(plain))
            .unwrap_or_default(),
        _ => cbc::Encryptor::<aes::Aes256>::new_from_slices(key, iv)
            .map(|c| c.encrypt_padded_vec_mut::<Pkcs7>(plain))
            .unwrap_or_default(),
    }
}

fn aes_cbc_decrypt(key: &[u8], iv: &[u8], ct: &[u8]) -> Result<Vec<u8>, EncryptionError> {
    use aes::cipher::{BlockDecryptMut, KeyIvInit, block_padding::Pkcs7};
    let bad = |e: &dyn std::fmt::Display| EncryptionError::Decrypt(format!("aescbc: {e}"));
    match key.len() {
        16 => cbc::Decryptor::<aes::Aes128>::new_from_slices(key, iv)
            .map_err(|e| bad(&e))?
            .decrypt_padded_vec_mut::<Pkcs7>(ct)
            .map_err(|e| bad(&e)),
        24 => cbc::Decryptor::<aes::Aes192>::new_from_slices(key, iv)
            .map_err(|e| bad(&e))?
            .decrypt_padded_vec_mut::<Pkcs7>(ct)
            .map_err(|e| bad(&e)),
        _ => cbc::Decryptor::<aes::Aes256>::new_from_slices(key, iv)
            .map_err(|e| bad(&e))?
            .decrypt_padded_vec_mut::<Pkcs7>(ct)
            .map_err(|e| bad(&e)),
    }
}

/// A random 32-byte key, base64 as the configuration holds it.
pub fn generate_key() -> String {
    let mut key = [0u8; 32];
    rand::rng().fill_bytes(&mut key);
    base64::engine::general_purpose::STANDARD.encode(key)
}

/// A backend that encrypts covered values on their way in and decrypts them on the way out.
pub struct EncryptingBackend {
    inner: Arc<dyn Backend>,
    config: Arc<EncryptionConfig>,
}

impl EncryptingBackend {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn Backend>, config: EncryptionConfig) -> Self {
        Self {
            inner,
            config: Arc::new(config),
        }
    }
}

fn open(config: &EncryptionConfig, kv: KeyValue) -> Result<KeyValue, StoreError> {
    if !config.covers(&kv.key) {
        return Ok(kv);
    }
    let value = config.decrypt(&kv.value).map_err(|e| StoreError::Corrupt {
        message: format!("{}: {e}", kv.key),
    })?;
    Ok(KeyValue { value, ..kv })
}

/// Decrypts, or logs and passes the value on as stored (the reader then reports it as
/// unreadable) when it cannot.
fn open_lossy(config: &EncryptionConfig, kv: KeyValue) -> KeyValue {
    let key = kv.key.clone();
    let fallback = kv.clone();
    open(config, kv).unwrap_or_else(|e| {
        tracing::error!(%key, error = %e, "cannot decrypt stored value");
        fallback
    })
}

struct DecryptingSink {
    inner: Arc<dyn EventSink>,
    config: Arc<EncryptionConfig>,
}

impl EventSink for DecryptingSink {
    fn apply(&self, events: Vec<Event>) {
        let events = events
            .into_iter()
            .map(|e| {
                // A deletion without its last value (create revision 0) has nothing to
                // decrypt: the inner sink fills it in, already decrypted.
                let unfilled = e.kind == crate::EventKind::Deleted && e.kv.create_revision == 0;
                if unfilled || !self.config.covers(&e.kv.key) {
                    return e;
                }
                let kv = open_lossy(&self.config, (*e.kv).clone());
                Event {
                    kv: Arc::new(kv),
                    ..e
                }
            })
            .collect();
        self.inner.apply(events);
    }

    fn reset(&self, mut page: ListPage) {
        page.items = page
            .items
            .into_iter()
            .map(|kv| open_lossy(&self.config, kv))
            .collect();
        self.inner.reset(page);
    }

    fn progress(&self, revision: Revision) {
        self.inner.progress(revision);
    }

    fn fills_deleted_values(&self) -> bool {
        self.inner.fills_deleted_values()
    }

    fn live_bytes(&self) -> Option<u64> {
        self.inner.live_bytes()
    }
}

#[async_trait]
impl Backend for EncryptingBackend {
    async fn start(&self, sink: Arc<dyn EventSink>) -> Result<ListPage, StoreError> {
        let sink = Arc::new(DecryptingSink {
            inner: sink,
            config: self.config.clone(),
        });
        let mut page = self.inner.start(sink).await?;
        page.items = page
            .items
            .into_iter()
            .map(|kv| open_lossy(&self.config, kv))
            .collect();
        Ok(page)
    }

    async fn write(&self, op: WriteOp) -> Result<KeyValue, StoreError> {
        let seal = |key: &str, value: Bytes| {
            if self.config.covers(key) {
                self.config.encrypt(&value)
            } else {
                value
            }
        };
        let op = match op {
            WriteOp::Create { key, value } => WriteOp::Create {
                value: seal(&key, value),
                key,
            },
            WriteOp::Update {
                key,
                value,
                expected,
            } => WriteOp::Update {
                value: seal(&key, value),
                key,
                expected,
            },
            WriteOp::Delete {
                key,
                value,
                expected,
            } => WriteOp::Delete {
                value: seal(&key, value),
                key,
                expected,
            },
        };
        match self.inner.write(op).await {
            Ok(kv) => open(&self.config, kv),
            Err(StoreError::Conflict {
                key,
                expected,
                current,
            }) => Err(StoreError::Conflict {
                key,
                expected,
                current: Box::new(open(&self.config, *current)?),
            }),
            Err(e) => Err(e),
        }
    }

    async fn list(
        &self,
        prefix: &str,
        revision: Revision,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<ListPage, StoreError> {
        let mut page = self
            .inner
            .list(prefix, revision, start_after, limit)
            .await?;
        page.items = page
            .items
            .into_iter()
            .map(|kv| open(&self.config, kv))
            .collect::<Result<_, _>>()?;
        Ok(page)
    }

    async fn get(&self, key: &str, revision: Revision) -> Result<Option<KeyValue>, StoreError> {
        match self.inner.get(key, revision).await? {
            Some(kv) => Ok(Some(open(&self.config, kv)?)),
            None => Ok(None),
        }
    }

    async fn fresh_revision(&self) -> Result<Revision, StoreError> {
        self.inner.fresh_revision().await
    }

    fn shared(&self) -> bool {
        self.inner.shared()
    }

    async fn compact(&self, revision: Revision) -> Result<(), StoreError> {
        self.inner.compact(revision).await
    }

    async fn check(&self) -> Result<CheckReport, StoreError> {
        self.inner.check().await
    }

    fn info(&self) -> BackendInfo {
        self.inner.info()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(provider: &str) -> EncryptionConfig {
        let doc = serde_json::json!({
            "kind": "EncryptionConfiguration", "apiVersion": "apiserver.config.k8s.io/v1",
            "resources": [{"resources": ["secrets"], "providers": [
                {provider: {"keys": [{"name": "key1", "secret": generate_key()}]}},
                {"identity": {}}
            ]}]
        });
        EncryptionConfig::from_json(doc.to_string().as_bytes()).expect("valid config")
    }

    #[test]
    fn values_round_trip_with_upstream_prefixes() {
        for provider in ["aescbc", "secretbox"] {
            let c = config(provider);
            let sealed = c.encrypt(b"{\"data\":{\"password\":\"aHVudGVyMg==\"}}");
            let prefix = format!("k8s:enc:{provider}:v1:key1:");
            assert!(sealed.starts_with(prefix.as_bytes()), "{provider}");
            assert!(!sealed.windows(8).any(|w| w == b"password"));
            let opened = c.decrypt(&sealed).expect("decrypts");
            assert_eq!(&opened[..], b"{\"data\":{\"password\":\"aHVudGVyMg==\"}}");
            // Plaintext from before encryption is read as it is.
            assert_eq!(&c.decrypt(b"{}").expect("plain")[..], b"{}");
        }
        // Another configuration's key does not open it.
        let sealed = config("aescbc").encrypt(b"secret");
        assert!(config("secretbox").decrypt(&sealed).is_err());
        assert!(config("aescbc").covers("/registry/secrets/default/x"));
        assert!(!config("aescbc").covers("/registry/configmaps/default/x"));
    }

    #[test]
    fn bad_configurations_are_refused() {
        let bad = |doc: serde_json::Value| {
            EncryptionConfig::from_json(doc.to_string().as_bytes()).is_err()
        };
        assert!(bad(serde_json::json!({"kind": "Other"})));
        assert!(bad(
            serde_json::json!({"kind": "EncryptionConfiguration", "resources": [
            {"resources": ["secrets"], "providers": [{"aescbc": {"keys": [{"name": "k", "secret": "c2hvcnQ="}]}}]}]})
        ));
        assert!(bad(
            serde_json::json!({"kind": "EncryptionConfiguration", "resources": [
            {"resources": ["secrets"], "providers": [{"kms": {}}]}]})
        ));
    }
}

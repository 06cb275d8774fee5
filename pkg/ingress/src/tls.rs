//! Certificates by server name (SNI) from the served Ingresses' `spec.tls` Secrets, with a
//! self-signed fallback for names no Secret covers (as Traefik's default certificate).

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::RwLock;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::IngressError;

/// Certificates by host name (`*.example.com` for wildcards) and the fallback.
#[derive(Debug, Default, Clone)]
pub struct Certs {
    by_host: HashMap<String, Arc<CertifiedKey>>,
    /// From a `spec.tls` entry without hosts: used for names no other entry covers.
    default: Option<Arc<CertifiedKey>>,
}

impl Certs {
    /// Serves `key` for `host` unless a certificate is there already (the oldest wins).
    pub fn insert(&mut self, host: &str, key: Arc<CertifiedKey>) {
        self.by_host.entry(host.to_ascii_lowercase()).or_insert(key);
    }

    /// Serves `key` for names no host entry covers (unless one is set).
    pub fn set_default(&mut self, key: Arc<CertifiedKey>) {
        if self.default.is_none() {
            self.default = Some(key);
        }
    }

    fn find(&self, name: &str) -> Option<&Arc<CertifiedKey>> {
        let name = name.to_ascii_lowercase();
        self.by_host
            .get(&name)
            .or_else(|| {
                name.split_once('.')
                    .and_then(|(_, suffix)| self.by_host.get(&format!("*.{suffix}")))
            })
            .or(self.default.as_ref())
    }
}

/// The SNI resolver behind the HTTPS listener; [`CertResolver::set`] swaps the
/// certificates without touching open connections.
#[derive(Debug)]
pub struct CertResolver {
    certs: RwLock<Arc<Certs>>,
    fallback: Arc<CertifiedKey>,
}

impl CertResolver {
    /// A resolver with no Secrets yet and a fresh self-signed fallback certificate.
    pub fn new() -> Result<Self, IngressError> {
        Ok(Self {
            certs: RwLock::new(Arc::new(Certs::default())),
            fallback: Arc::new(self_signed()?),
        })
    }

    /// Replaces the certificates.
    pub fn set(&self, certs: Certs) {
        *self.certs.write() = Arc::new(certs);
    }
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let certs = self.certs.read().clone();
        let found = match hello.server_name() {
            Some(name) => certs.find(name),
            None => certs.default.as_ref(),
        };
        Some(found.cloned().unwrap_or_else(|| self.fallback.clone()))
    }
}

/// The certificate and key of a `kubernetes.io/tls` Secret's `tls.crt` and `tls.key`.
pub fn certified_key(cert_pem: &[u8], key_pem: &[u8]) -> Result<CertifiedKey, IngressError> {
    let chain = rustls_pemfile::certs(&mut &cert_pem[..])
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| IngressError::Tls(format!("tls.crt: {e}")))?;
    if chain.is_empty() {
        return Err(IngressError::Tls("tls.crt holds no certificate".into()));
    }
    let key = rustls_pemfile::private_key(&mut &key_pem[..])
        .map_err(|e| IngressError::Tls(format!("tls.key: {e}")))?
        .ok_or_else(|| IngressError::Tls("tls.key holds no private key".into()))?;
    let signer = rustls::crypto::ring::sign::any_supported_type(&key)
        .map_err(|e| IngressError::Tls(format!("tls.key: {e}")))?;
    let ck = CertifiedKey::new(chain, signer);
    ck.keys_match()
        .map_err(|e| IngressError::Tls(format!("tls.key does not match tls.crt: {e}")))?;
    Ok(ck)
}

/// The fallback for names no Secret covers: self-signed, made at start.
fn self_signed() -> Result<CertifiedKey, IngressError> {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())
        .map_err(|e| IngressError::Tls(e.to_string()))?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "K1S INGRESS DEFAULT CERT");
    let key = rcgen::KeyPair::generate().map_err(|e| IngressError::Tls(e.to_string()))?;
    let cert = params
        .self_signed(&key)
        .map_err(|e| IngressError::Tls(e.to_string()))?;
    certified_key(cert.pem().as_bytes(), key.serialize_pem().as_bytes())
}

/// The HTTPS listener's configuration: certificates from `resolver`, HTTP/2 and HTTP/1.1.
pub fn server_config(resolver: Arc<CertResolver>) -> Result<rustls::ServerConfig, IngressError> {
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| IngressError::Tls(e.to_string()))?
    .with_no_client_auth()
    .with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str) -> Arc<CertifiedKey> {
        let c = rcgen::generate_simple_self_signed(vec![name.to_string()])
            .unwrap_or_else(|e| panic!("{e}"));
        Arc::new(
            certified_key(
                c.cert.pem().as_bytes(),
                c.signing_key.serialize_pem().as_bytes(),
            )
            .unwrap_or_else(|e| panic!("{e}")),
        )
    }

    #[test]
    fn exact_name_before_wildcard_before_default() {
        let exact = key("a.foo.com");
        let wild = key("*.foo.com");
        let mut certs = Certs::default();
        certs.insert("a.foo.com", exact.clone());
        certs.insert("*.foo.com", wild.clone());
        let found = |c: &Certs, n: &str| c.find(n).map(|k| k.cert[0].clone());
        assert_eq!(found(&certs, "a.foo.com"), Some(exact.cert[0].clone()));
        assert_eq!(found(&certs, "B.foo.com"), Some(wild.cert[0].clone()));
        assert_eq!(found(&certs, "x.b.foo.com"), None);
        assert_eq!(found(&certs, "foo.com"), None);
        let other = key("other");
        certs.set_default(other.clone());
        assert_eq!(found(&certs, "foo.com"), Some(other.cert[0].clone()));
    }

    #[test]
    fn a_key_must_match_its_certificate() {
        let a = rcgen::generate_simple_self_signed(vec!["a".to_string()])
            .unwrap_or_else(|e| panic!("{e}"));
        let b = rcgen::generate_simple_self_signed(vec!["b".to_string()])
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            certified_key(
                a.cert.pem().as_bytes(),
                b.signing_key.serialize_pem().as_bytes()
            )
            .is_err()
        );
        assert!(certified_key(b"junk", b"junk").is_err());
        assert!(self_signed().is_ok());
    }
}

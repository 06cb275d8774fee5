//! The apiserver's rustls configuration: the serving certificate, HTTP/2 preferred, and
//! client certificates verified against the cluster CA when a client offers one.

use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};

use crate::{Pki, PkiError};

/// The ring crypto provider, passed explicitly so nothing depends on a process-wide default.
pub fn crypto_provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A root store holding only the cluster CA.
pub fn ca_root_store(pki: &Pki) -> Result<RootCertStore, PkiError> {
    let mut roots = RootCertStore::empty();
    roots
        .add(pki.ca_der().clone())
        .map_err(|source| PkiError::TlsConfig { source })?;
    Ok(roots)
}

/// TLS for the apiserver listener: serves [`Pki::serving_cert_chain`], offers ALPN `h2` then
/// `http/1.1`, and requests a client certificate without requiring one (bearer tokens and
/// anonymous requests must still reach authentication); a presented certificate must chain
/// to the cluster CA or the handshake fails.
pub fn server_tls_config(pki: &Pki) -> Result<ServerConfig, PkiError> {
    let provider = crypto_provider();
    let verifier = WebPkiClientVerifier::builder_with_provider(
        Arc::new(ca_root_store(pki)?),
        provider.clone(),
    )
    .allow_unauthenticated()
    .build()
    .map_err(|source| PkiError::ClientVerifier { source })?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|source| PkiError::TlsConfig { source })?
        .with_client_cert_verifier(verifier)
        .with_single_cert(pki.serving_cert_chain(), pki.serving_key())
        .map_err(|source| PkiError::TlsConfig { source })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

//! TLS between the API server and kubelets: each kubelet serves with a certificate from the
//! cluster CA and accepts only client certificates from it; the API server dials kubelets
//! with its own client certificate (`kube-apiserver-kubelet-client` in `system:masters`,
//! kubeadm's names) and verifies their serving certificates against the same CA.

use std::path::Path;
use std::sync::Arc;

use rcgen::{Issuer, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};

use crate::cert::{self, LeafSpec, San, cert_from_pem, key_from_pem};
use crate::tls::crypto_provider;
use crate::{Pki, PkiError};

/// The user (CN) of the API server's client certificate for kubelets.
pub const KUBELET_CLIENT_USER: &str = "kube-apiserver-kubelet-client";
/// The group (O) of the API server's client certificate for kubelets.
pub const KUBELET_CLIENT_GROUP: &str = "system:masters";

/// The cluster CA as a signer, loaded read-only from `<data_dir>/server/tls/ca.{crt,key}`
/// (for a kubelet running beside the server, and for tests hosting their own kubelet).
pub struct CaSigner {
    ca_der: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for CaSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key never reaches a log line.
        f.write_str("CaSigner")
    }
}

impl CaSigner {
    /// Loads the CA of the server whose data dir is `data_dir`; creates nothing.
    pub fn load(data_dir: &Path) -> Result<CaSigner, PkiError> {
        let tls = data_dir.join("server").join("tls");
        let (crt, key) = (tls.join("ca.crt"), tls.join("ca.key"));
        let read = |p: &Path| {
            std::fs::read_to_string(p).map_err(|source| PkiError::Read {
                path: p.to_path_buf(),
                source,
            })
        };
        let ca_der = cert_from_pem(&crt, &read(&crt)?)?;
        let key = key_from_pem(&key, &read(&key)?)?;
        let issuer =
            Issuer::from_ca_cert_der(&ca_der, key).map_err(|source| PkiError::Generate {
                what: format!("signer from {}", crt.display()),
                source,
            })?;
        Ok(CaSigner { ca_der, issuer })
    }

    /// The CA as an rcgen issuer (for signing requests).
    pub(crate) fn issuer(&self) -> &Issuer<'static, KeyPair> {
        &self.issuer
    }

    /// The CA certificate.
    pub fn ca_der(&self) -> &CertificateDer<'static> {
        &self.ca_der
    }

    /// Issues a serving certificate for `sans`; returns certificate and key PEM.
    pub fn issue_serving_cert(
        &self,
        cn: &str,
        sans: &[String],
    ) -> Result<(String, String), PkiError> {
        issue_serving(&self.issuer, cn, sans)
    }

    /// Issues a client certificate; returns certificate and key PEM.
    pub fn issue_client_cert(&self, cn: &str, orgs: &[&str]) -> Result<(String, String), PkiError> {
        let key = cert::new_key(cn)?;
        let cert = LeafSpec::client(cn, orgs).issue(&key, &self.issuer)?;
        Ok((cert, key.serialize_pem()))
    }
}

fn issue_serving(
    issuer: &Issuer<'static, KeyPair>,
    cn: &str,
    sans: &[String],
) -> Result<(String, String), PkiError> {
    let key = cert::new_key(cn)?;
    let sans = sans.iter().map(|s| San::parse(s)).collect();
    let cert = LeafSpec::server(cn, &[], sans).issue(&key, issuer)?;
    Ok((cert, key.serialize_pem()))
}

fn chain_and_key(
    cert_pem: &str,
    key_pem: &str,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), PkiError> {
    let chain = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| PkiError::Pem {
            path: "kubelet certificate".into(),
            kind: "certificate",
            source,
        })?;
    let key =
        PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|source| PkiError::Pem {
            path: "kubelet key".into(),
            kind: "private key",
            source,
        })?;
    Ok((chain, key))
}

fn roots(ca_der: &CertificateDer<'static>) -> Result<RootCertStore, PkiError> {
    let mut roots = RootCertStore::empty();
    roots
        .add(ca_der.clone())
        .map_err(|source| PkiError::TlsConfig { source })?;
    Ok(roots)
}

/// TLS for a kubelet's server: `cert_pem`/`key_pem` served, client certificates verified
/// against the CA but optional, so a request without one reaches the server and is
/// answered 401 as upstream's kubelet does.
pub fn kubelet_server_tls_config(
    ca_der: &CertificateDer<'static>,
    cert_pem: &str,
    key_pem: &str,
) -> Result<ServerConfig, PkiError> {
    let provider = crypto_provider();
    let verifier =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots(ca_der)?), provider.clone())
            .allow_unauthenticated()
            .build()
            .map_err(|source| PkiError::ClientVerifier { source })?;
    let (chain, key) = chain_and_key(cert_pem, key_pem)?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|source| PkiError::TlsConfig { source })?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|source| PkiError::TlsConfig { source })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// TLS for the API server's connections to kubelets: the CA as the only root, the client
/// certificate presented, HTTP/1.1 (upgrades need it).
pub fn kubelet_client_tls_config(
    ca_der: &CertificateDer<'static>,
    cert_pem: &str,
    key_pem: &str,
) -> Result<ClientConfig, PkiError> {
    let (chain, key) = chain_and_key(cert_pem, key_pem)?;
    let mut config = ClientConfig::builder_with_provider(crypto_provider())
        .with_safe_default_protocol_versions()
        .map_err(|source| PkiError::TlsConfig { source })?
        .with_root_certificates(roots(ca_der)?)
        .with_client_auth_cert(chain, key)
        .map_err(|source| PkiError::TlsConfig { source })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

impl Pki {
    /// The API server's TLS client configuration for kubelets, with a fresh client
    /// certificate (`kube-apiserver-kubelet-client`, `system:masters`).
    pub fn kubelet_client_tls_config(&self) -> Result<ClientConfig, PkiError> {
        let (cert, key) = self.issue_client_cert(KUBELET_CLIENT_USER, &[KUBELET_CLIENT_GROUP])?;
        kubelet_client_tls_config(self.ca_der(), &cert, &key)
    }

    /// A kubelet's server TLS configuration: a fresh serving certificate for `node_name`
    /// and `sans` (its addresses), client certificates checked against the cluster CA.
    pub fn kubelet_server_tls_config(
        &self,
        node_name: &str,
        sans: &[String],
    ) -> Result<ServerConfig, PkiError> {
        let mut names = vec![node_name.to_string()];
        names.extend(sans.iter().cloned());
        let (cert, key) = self.issue_serving_cert(node_name, &names)?;
        kubelet_server_tls_config(self.ca_der(), &cert, &key)
    }
}

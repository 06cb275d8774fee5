//! Reaching an extension API server: its Service resolved to a ready endpoint (or the
//! cluster IP), TLS verified by the APIService's `caBundle` (or not at all with
//! `insecureSkipTLSVerify`) for the name `<service>.<namespace>.svc`, and the proxy's
//! client certificate presented.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use serde_json::Value;

use super::Remote;
use crate::registry::generic::GenericStore;

/// The proxy's client certificate chain and key.
pub struct ProxyIdentity {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl ProxyIdentity {
    /// Parses a certificate chain and key (PEM).
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self, String> {
        let chain = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("proxy client certificate: {e}"))?;
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
            .map_err(|e| format!("proxy client key: {e}"))?;
        Ok(Self { chain, key })
    }
}

/// Accepts any server certificate (`insecureSkipTLSVerify`, and upstream's discovery
/// check, which does not verify either) while still checking handshake signatures.
#[derive(Debug)]
struct NoVerification(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The TLS client configuration for `remote`; `verify: false` skips verification.
pub(super) fn tls_config(
    remote: &Remote,
    identity: Option<&ProxyIdentity>,
    verify: bool,
) -> Result<rustls::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let builder = if !verify || remote.insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
    } else {
        let mut roots = rustls::RootCertStore::empty();
        match &remote.ca_bundle {
            Some(pem) if !pem.is_empty() => {
                for cert in CertificateDer::pem_slice_iter(pem) {
                    let cert = cert.map_err(|e| format!("invalid caBundle: {e}"))?;
                    roots
                        .add(cert)
                        .map_err(|e| format!("invalid caBundle: {e}"))?;
                }
            }
            _ => {
                for cert in rustls_native_certs::load_native_certs().certs {
                    let _ = roots.add(cert);
                }
            }
        }
        builder.with_root_certificates(roots)
    };
    let mut config = match identity {
        Some(id) => builder
            .with_client_auth_cert(id.chain.clone(), id.key.clone_key())
            .map_err(|e| e.to_string())?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Why a Service cannot be reached, in upstream's availability reasons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Unreachable {
    /// The condition's reason (`ServiceNotFound`, `ServicePortError`,
    /// `EndpointsNotFound`, `MissingEndpoints`).
    pub reason: &'static str,
    /// The condition's message.
    pub message: String,
}

fn read(generic: &GenericStore, plural: &str, group: &str, ns: &str, name: &str) -> Option<Value> {
    let snapshot = generic.registry().snapshot();
    let res = snapshot.get(group, "v1", plural)?;
    let kv = generic.store().cache().get(&res.info.key(Some(ns), name))?;
    serde_json::from_slice(&kv.value).ok()
}

/// Resolves the Service of `remote` to an address to dial: a ready endpoint of the
/// Service port (EndpointSlices, else the Endpoints object), else, for a Service that
/// selects no pods, its cluster IP; an ExternalName Service to its host.
pub(super) fn resolve(
    generic: &GenericStore,
    remote: &Remote,
) -> Result<(String, u16), Unreachable> {
    let (ns, name, port) = (&remote.namespace, &remote.service, remote.port);
    let Some(service) = read(generic, "services", "", ns, name) else {
        return Err(Unreachable {
            reason: "ServiceNotFound",
            message: format!("service/{name} in {ns:?} is not present"),
        });
    };
    if service.pointer("/spec/type").and_then(Value::as_str) == Some("ExternalName") {
        let host = service
            .pointer("/spec/externalName")
            .and_then(Value::as_str)
            .unwrap_or_default();
        return Ok((host.to_string(), port));
    }
    let Some(svc_port) = service
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|p| p.get("port").and_then(Value::as_u64) == Some(u64::from(port)))
    else {
        return Err(Unreachable {
            reason: "ServicePortError",
            message: format!("service/{name} in {ns:?} is not listening on port {port}"),
        });
    };
    let port_name = svc_port
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let slices = endpoint_slices(generic, ns, name);
    let endpoints = read(generic, "endpoints", "", ns, name);
    if slices.is_empty() && endpoints.is_none() {
        return Err(Unreachable {
            reason: "EndpointsNotFound",
            message: format!("cannot find endpointslices for service/{name} in {ns:?}"),
        });
    }
    for slice in &slices {
        let Some(p) = slice
            .get("ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|p| p.get("name").and_then(Value::as_str).unwrap_or_default() == port_name)
            .and_then(|p| p.get("port").and_then(Value::as_u64))
            .and_then(|p| u16::try_from(p).ok())
        else {
            continue;
        };
        let ready = slice
            .get("endpoints")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|e| {
                e.pointer("/conditions/ready")
                    .and_then(Value::as_bool)
                    .unwrap_or(true)
            })
            .find_map(|e| e.pointer("/addresses/0").and_then(Value::as_str));
        if let Some(ip) = ready {
            return Ok((ip.to_string(), p));
        }
    }
    for subset in endpoints
        .as_ref()
        .and_then(|e| e.get("subsets"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let p = subset
            .get("ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|p| p.get("name").and_then(Value::as_str).unwrap_or_default() == port_name)
            .and_then(|p| p.get("port").and_then(Value::as_u64))
            .and_then(|p| u16::try_from(p).ok());
        let ip = subset.pointer("/addresses/0/ip").and_then(Value::as_str);
        if let (Some(p), Some(ip)) = (p, ip) {
            return Ok((ip.to_string(), p));
        }
    }
    Err(Unreachable {
        reason: "MissingEndpoints",
        message: format!(
            "endpointslices for service/{name} in {ns:?} have no addresses with port name {port_name:?}"
        ),
    })
}

fn endpoint_slices(generic: &GenericStore, ns: &str, name: &str) -> Vec<Value> {
    let snapshot = generic.registry().snapshot();
    let Some(res) = snapshot.get("discovery.k8s.io", "v1", "endpointslices") else {
        return Vec::new();
    };
    let (items, _, _) =
        generic
            .store()
            .cache()
            .list(&res.info.collection_prefix(Some(ns)), None, 0);
    items
        .iter()
        .filter_map(|kv| serde_json::from_slice::<Value>(&kv.value).ok())
        .filter(|s| {
            s.pointer("/metadata/labels/kubernetes.io~1service-name")
                .and_then(Value::as_str)
                == Some(name)
        })
        .collect()
}

/// The TLS server name of a Service (upstream's `<service>.<namespace>.svc`).
pub(super) fn server_name(remote: &Remote) -> String {
    format!("{}.{}.svc", remote.service, remote.namespace)
}

/// Opens an HTTP/1.1 connection to `host:port` over TLS with `tls`.
pub(super) async fn connect(
    remote: &Remote,
    host: &str,
    port: u16,
    tls: rustls::ClientConfig,
) -> Result<hyper::client::conn::http1::SendRequest<axum::body::Body>, String> {
    let tcp = tokio::net::TcpStream::connect((host, port))
        .await
        .map_err(|e| format!("dial tcp {host}:{port}: {e}"))?;
    let _ = tcp.set_nodelay(true);
    let name = ServerName::try_from(server_name(remote)).map_err(|e| e.to_string())?;
    let stream = tokio_rustls::TlsConnector::from(Arc::new(tls))
        .connect(name, tcp)
        .await
        .map_err(|e| format!("tls: {e}"))?;
    let (sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = conn.with_upgrades().await;
    });
    Ok(sender)
}

//! Certificates of the embedded etcd (`k1s server --cluster-init`), k3s's layout under
//! `<data_dir>/server/tls/etcd/`:
//!
//! ```text
//! server-ca.crt .key            signs etcd's serving certificates and its clients'
//! peer-ca.crt .key              signs the members' peer certificates
//! server-client.crt .key        etcd's client-facing serving certificate
//! peer-server-client.crt .key   this member's peer certificate (serves and dials peers)
//! client.crt .key               k1s's own client certificate for etcd
//! ```
//!
//! The two CAs are shared by every server of the cluster (they travel in the bootstrap
//! data); the leaf certificates are each server's own.

use std::path::{Path, PathBuf};

use rcgen::Issuer;

use crate::PkiError;
use crate::cert::{LeafSpec, San, cert_from_pem};
use crate::fs::ensure_dir;
use crate::pki::{DIR_MODE, Paths, ensure_leaf, load_or_create_ca};

/// Where the embedded etcd's TLS files are, created or re-issued as needed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdTlsFiles {
    /// `server-ca.crt`: what clients trust etcd's serving certificate by, and etcd its
    /// clients' certificates by.
    pub server_ca: PathBuf,
    /// `server-client.crt` + `.key`: etcd's serving certificate.
    pub server_cert: PathBuf,
    /// Key of [`EtcdTlsFiles::server_cert`].
    pub server_key: PathBuf,
    /// `peer-ca.crt`: what members trust each other's peer certificates by.
    pub peer_ca: PathBuf,
    /// `peer-server-client.crt` + `.key`: this member's peer certificate.
    pub peer_cert: PathBuf,
    /// Key of [`EtcdTlsFiles::peer_cert`].
    pub peer_key: PathBuf,
    /// `client.crt` + `.key`: the certificate k1s (and `k1s etcd-snapshot`) present to etcd.
    pub client_cert: PathBuf,
    /// Key of [`EtcdTlsFiles::client_cert`].
    pub client_key: PathBuf,
}

impl EtcdTlsFiles {
    /// The paths under `<data_dir>/server/tls/etcd/`, whether or not they exist yet.
    pub fn paths(data_dir: &Path) -> EtcdTlsFiles {
        let dir = data_dir.join("server").join("tls").join("etcd");
        let f = |name: &str| dir.join(name);
        EtcdTlsFiles {
            server_ca: f("server-ca.crt"),
            server_cert: f("server-client.crt"),
            server_key: f("server-client.key"),
            peer_ca: f("peer-ca.crt"),
            peer_cert: f("peer-server-client.crt"),
            peer_key: f("peer-server-client.key"),
            client_cert: f("client.crt"),
            client_key: f("client.key"),
        }
    }

    /// Loads or creates the two etcd CAs and this member's certificates: the serving and
    /// peer certificates cover `localhost`, 127.0.0.1, `node_name` and `addresses`.
    pub fn load_or_create(
        data_dir: &Path,
        node_name: &str,
        addresses: &[std::net::IpAddr],
    ) -> Result<EtcdTlsFiles, PkiError> {
        let mut paths = Paths::new(data_dir);
        ensure_dir(&paths.tls, DIR_MODE)?;
        paths.tls = paths.tls.join("etcd");
        ensure_dir(&paths.tls, DIR_MODE)?;
        let mut sans = vec![
            San::Dns("localhost".into()),
            San::Ip(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)),
        ];
        if !node_name.trim().is_empty() {
            sans.push(San::parse(node_name));
        }
        sans.extend(addresses.iter().map(|ip| San::Ip(*ip)));
        let mut seen = std::collections::HashSet::new();
        sans.retain(|s| seen.insert(s.clone()));

        let (server_ca_pem, server_ca_key, _) =
            load_or_create_ca(&paths, "server-ca", "etcd-server-ca")?;
        let server_ca_path = paths.tls.join("server-ca.crt");
        let server_ca_der = cert_from_pem(&server_ca_path, &server_ca_pem)?;
        let server_issuer =
            Issuer::from_ca_cert_der(&server_ca_der, server_ca_key).map_err(|source| {
                PkiError::Generate {
                    what: format!("signer from {}", server_ca_path.display()),
                    source,
                }
            })?;
        let (peer_ca_pem, peer_ca_key, _) = load_or_create_ca(&paths, "peer-ca", "etcd-peer-ca")?;
        let peer_ca_path = paths.tls.join("peer-ca.crt");
        let peer_ca_der = cert_from_pem(&peer_ca_path, &peer_ca_pem)?;
        let peer_issuer =
            Issuer::from_ca_cert_der(&peer_ca_der, peer_ca_key).map_err(|source| {
                PkiError::Generate {
                    what: format!("signer from {}", peer_ca_path.display()),
                    source,
                }
            })?;

        ensure_leaf(
            &paths,
            "server-client",
            &LeafSpec::server_client("etcd-server", sans.clone()),
            &server_issuer,
            &server_ca_der,
        )?;
        ensure_leaf(
            &paths,
            "peer-server-client",
            &LeafSpec::server_client("etcd-peer", sans),
            &peer_issuer,
            &peer_ca_der,
        )?;
        ensure_leaf(
            &paths,
            "client",
            &LeafSpec::client("etcd-client", &[]),
            &server_issuer,
            &server_ca_der,
        )?;
        Ok(EtcdTlsFiles::paths(data_dir))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cert::inspect;
    use x509_parser::prelude::{FromDer, X509Certificate};

    fn der(path: &Path) -> Vec<u8> {
        let pem = std::fs::read_to_string(path).unwrap();
        cert_from_pem(path, &pem).unwrap().to_vec()
    }

    #[test]
    fn etcd_certificates_are_made_once_from_their_own_cas() {
        let dir = tempfile::tempdir().unwrap();
        let ip: std::net::IpAddr = "10.0.0.7".parse().unwrap();
        let files = EtcdTlsFiles::load_or_create(dir.path(), "node-a", &[ip]).unwrap();
        assert_eq!(files, EtcdTlsFiles::paths(dir.path()));
        let server_ca = der(&files.server_ca);
        let peer_ca = der(&files.peer_ca);
        assert_ne!(server_ca, peer_ca);

        let peer = der(&files.peer_cert);
        let info = inspect(&files.peer_cert, &peer, Some(&peer_ca)).unwrap();
        assert!(info.signed_by_issuer);
        assert!(info.sans.contains(&San::Ip(ip)));
        assert!(info.sans.contains(&San::Dns("node-a".into())));
        // Members dial each other with the certificate they serve with.
        let (_, cert) = X509Certificate::from_der(&peer).unwrap();
        let eku = cert.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.server_auth && eku.client_auth);

        let server = der(&files.server_cert);
        assert!(
            inspect(&files.server_cert, &server, Some(&server_ca))
                .unwrap()
                .signed_by_issuer
        );
        let client = der(&files.client_cert);
        assert!(
            inspect(&files.client_cert, &client, Some(&server_ca))
                .unwrap()
                .signed_by_issuer
        );

        // A restart reuses everything.
        EtcdTlsFiles::load_or_create(dir.path(), "node-a", &[ip]).unwrap();
        assert_eq!(der(&files.peer_cert), peer);
        assert_eq!(der(&files.server_ca), server_ca);
    }
}

//! The cluster's certificate authority and the files issued from it, created on first start
//! and reused afterwards (k3s `pkg/daemons/control/deps/deps.go`).
//!
//! Layout under `<data_dir>/server/` (directories 0700, files 0600):
//!
//! ```text
//! token                         K10<sha256 of ca.crt>::server:<secret>
//! tls/ca.crt tls/ca.key         cluster CA, ECDSA P-256, 10 years
//! tls/serving.crt .key          apiserver serving certificate, 1 year
//! tls/client-admin.crt .key     CN system:admin, O system:masters, 1 year
//! tls/service-account.key .pub  service account token signing key (ES256)
//! tls/request-header-ca.crt .key front-proxy CA: signs the aggregation proxy's client
//!                               certificate (k3s's names), 10 years
//! tls/client-auth-proxy.crt .key CN system:auth-proxy, the aggregation proxy, 1 year
//! ```

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use rcgen::{Issuer, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tracing::{info, warn};

use crate::PkiError;
use crate::cert::{
    self, CertInfo, LeafSpec, RENEW_BEFORE, San, cert_from_pem, inspect, key_from_pem,
};
use crate::fs::{ensure_dir, read_optional, write_atomic};
use crate::token::{ca_hash, format_token, parse_token, random_secret};

/// Mode of every file this crate writes under the data dir.
pub(crate) const FILE_MODE: u32 = 0o600;
/// Mode of `server/` and `server/tls/`.
pub(crate) const DIR_MODE: u32 = 0o700;

/// What the server's certificates must say about it; built from `k1s server` flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PkiOptions {
    /// `--data-dir`; files go under `<data_dir>/server/`.
    pub data_dir: PathBuf,
    /// `--cluster-domain` (default `cluster.local`).
    pub cluster_domain: String,
    /// First IP of the service CIDR (the `kubernetes` Service's ClusterIP, e.g. 10.43.0.1).
    pub service_ip: IpAddr,
    /// This node's name; a SAN of the serving certificate.
    pub node_name: String,
    /// Node, advertise and bind addresses; each is a SAN of the serving certificate.
    pub addresses: Vec<IpAddr>,
    /// `--tls-san`: extra names or IPs for the serving certificate.
    pub extra_sans: Vec<String>,
    /// `--token` given by the user: a bare secret or a full `K10…` token.
    pub token: Option<String>,
}

impl PkiOptions {
    /// Options with k3s's defaults (`cluster.local`, service IP 10.43.0.1, no extra names).
    pub fn new(data_dir: impl Into<PathBuf>, node_name: impl Into<String>) -> PkiOptions {
        PkiOptions {
            data_dir: data_dir.into(),
            cluster_domain: "cluster.local".to_string(),
            service_ip: IpAddr::V4(Ipv4Addr::new(10, 43, 0, 1)),
            node_name: node_name.into(),
            addresses: Vec::new(),
            extra_sans: Vec::new(),
            token: None,
        }
    }

    /// Every name the serving certificate must cover, without duplicates.
    fn serving_sans(&self) -> Vec<San> {
        let domain = self.cluster_domain.trim().trim_matches('.');
        let mut names = vec![
            San::Dns("localhost".into()),
            San::Ip(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            San::Ip(IpAddr::V6(Ipv6Addr::LOCALHOST)),
        ];
        // A bind address of 0.0.0.0 or :: names no host; it is not a SAN.
        names.extend(
            self.addresses
                .iter()
                .filter(|ip| !ip.is_unspecified())
                .map(|ip| San::Ip(*ip)),
        );
        names.push(San::Ip(self.service_ip));
        if !self.node_name.trim().is_empty() {
            names.push(San::parse(&self.node_name));
        }
        for n in ["kubernetes", "kubernetes.default", "kubernetes.default.svc"] {
            names.push(San::Dns(n.into()));
        }
        if !domain.is_empty() {
            names.push(San::parse(&format!("kubernetes.default.svc.{domain}")));
        }
        names.extend(
            self.extra_sans
                .iter()
                .filter(|s| !s.trim().is_empty())
                .map(|s| San::parse(s)),
        );
        let mut seen = std::collections::HashSet::new();
        names.retain(|n| seen.insert(n.clone()));
        names
    }
}

/// Where each file lives.
pub(crate) struct Paths {
    server: PathBuf,
    pub(crate) tls: PathBuf,
    token: PathBuf,
}

impl Paths {
    pub(crate) fn new(data_dir: &Path) -> Paths {
        let server = data_dir.join("server");
        Paths {
            tls: server.join("tls"),
            token: server.join("token"),
            server,
        }
    }

    fn tls(&self, name: &str) -> PathBuf {
        self.tls.join(name)
    }
}

/// The cluster CA with the certificates, keys and token issued from it.
pub struct Pki {
    tls_dir: PathBuf,
    ca_pem: String,
    ca_der: CertificateDer<'static>,
    ca_fingerprint: String,
    issuer: Issuer<'static, KeyPair>,
    serving_cert_pem: String,
    serving_key_pem: String,
    serving_chain: Vec<CertificateDer<'static>>,
    serving_key: PrivateKeyDer<'static>,
    admin_cert_pem: String,
    admin_key_pem: String,
    sa_key_pem: String,
    sa_pub_pem: String,
    token: String,
    token_secret: String,
    request_header_ca_pem: String,
    proxy_cert_pem: String,
    proxy_key_pem: String,
}

/// The user (CN) of the aggregation proxy's client certificate (k3s's name), the one
/// name extension servers accept request-header identities from.
pub const AUTH_PROXY_USER: &str = "system:auth-proxy";

impl fmt::Debug for Pki {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Keys and the token are secrets; never let them reach a log line.
        f.debug_struct("Pki")
            .field("tls_dir", &self.tls_dir)
            .field("ca_fingerprint", &self.ca_fingerprint)
            .finish_non_exhaustive()
    }
}

// === impl Pki ===

impl Pki {
    /// Loads the cluster's PKI from `<data_dir>/server/`, creating what is missing.
    ///
    /// The CA, admin certificate, service account key and token are reused as found. The
    /// serving certificate is re-issued from the same CA when it no longer covers the
    /// requested names or expires within 90 days; leaf certificates not signed by the CA
    /// or not matching their key are re-issued too. A file that exists but cannot be read or
    /// parsed is an error naming it, never silently replaced.
    pub fn load_or_create(opts: &PkiOptions) -> Result<Pki, PkiError> {
        let paths = Paths::new(&opts.data_dir);
        ensure_dir(&paths.server, DIR_MODE)?;
        ensure_dir(&paths.tls, DIR_MODE)?;

        let (ca_pem, ca_key, ca_created) = load_or_create_ca(&paths, "ca", "k1s-ca")?;
        let ca_crt_path = paths.tls("ca.crt");
        let ca_der = cert_from_pem(&ca_crt_path, &ca_pem)?;
        let issuer =
            Issuer::from_ca_cert_der(&ca_der, ca_key).map_err(|source| PkiError::Generate {
                what: format!("signer from {}", ca_crt_path.display()),
                source,
            })?;
        let ca_fingerprint = ca_hash(ca_pem.as_bytes());

        let serving = LeafSpec::server("k1s", &["k1s"], opts.serving_sans());
        let (serving_cert_pem, serving_key_pem) =
            ensure_leaf(&paths, "serving", &serving, &issuer, &ca_der)?;
        let admin = LeafSpec::client("system:admin", &["system:masters"]);
        let (admin_cert_pem, admin_key_pem) =
            ensure_leaf(&paths, "client-admin", &admin, &issuer, &ca_der)?;
        let (sa_key_pem, sa_pub_pem) = ensure_service_account_key(&paths)?;
        // The front-proxy CA is separate from the cluster CA, as upstream requires: an
        // extension server trusts certificates from it as a proxy's, never as users'.
        let (request_header_ca_pem, rh_key, _) =
            load_or_create_ca(&paths, "request-header-ca", "k1s-request-header-ca")?;
        let rh_path = paths.tls("request-header-ca.crt");
        let rh_der = cert_from_pem(&rh_path, &request_header_ca_pem)?;
        let rh_issuer =
            Issuer::from_ca_cert_der(&rh_der, rh_key).map_err(|source| PkiError::Generate {
                what: format!("signer from {}", rh_path.display()),
                source,
            })?;
        let proxy = LeafSpec::client(AUTH_PROXY_USER, &[]);
        let (proxy_cert_pem, proxy_key_pem) =
            ensure_leaf(&paths, "client-auth-proxy", &proxy, &rh_issuer, &rh_der)?;
        let (token, token_secret) = ensure_token(
            &paths.token,
            opts.token.as_deref(),
            &ca_fingerprint,
            ca_created,
        )?;

        let serving_path = paths.tls("serving.crt");
        let serving_chain = CertificateDer::pem_slice_iter(serving_cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|source| PkiError::Pem {
                path: serving_path,
                kind: "certificate",
                source,
            })?;
        let serving_key =
            PrivateKeyDer::from_pem_slice(serving_key_pem.as_bytes()).map_err(|source| {
                PkiError::Pem {
                    path: paths.tls("serving.key"),
                    kind: "private key",
                    source,
                }
            })?;

        Ok(Pki {
            tls_dir: paths.tls,
            ca_pem,
            ca_der,
            ca_fingerprint,
            issuer,
            serving_cert_pem,
            serving_key_pem,
            serving_chain,
            serving_key,
            admin_cert_pem,
            admin_key_pem,
            sa_key_pem,
            sa_pub_pem,
            token,
            token_secret,
            request_header_ca_pem,
            proxy_cert_pem,
            proxy_key_pem,
        })
    }

    /// The front-proxy CA certificate PEM (`request-header-ca.crt`), which extension API
    /// servers trust for the proxy's client certificate.
    pub fn request_header_ca_pem(&self) -> &str {
        &self.request_header_ca_pem
    }

    /// The aggregation proxy's client certificate PEM (`client-auth-proxy.crt`).
    pub fn proxy_client_cert_pem(&self) -> &str {
        &self.proxy_cert_pem
    }

    /// The aggregation proxy's client key PEM.
    pub fn proxy_client_key_pem(&self) -> &str {
        &self.proxy_key_pem
    }

    /// `<data_dir>/server/tls`, where every certificate and key lives.
    pub fn tls_dir(&self) -> &Path {
        &self.tls_dir
    }

    /// The CA certificate PEM, byte for byte as stored in `ca.crt` (what `/cacerts` serves).
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The CA certificate in DER, for building a rustls root store.
    pub fn ca_der(&self) -> &CertificateDer<'static> {
        &self.ca_der
    }

    /// Hex SHA-256 of [`Pki::ca_pem`]: the CA hash inside the full token, which an agent
    /// compares against the CA it downloads before trusting the server.
    pub fn ca_fingerprint(&self) -> &str {
        &self.ca_fingerprint
    }

    /// The serving certificate chain (leaf first) for the apiserver's TLS listener.
    pub fn serving_cert_chain(&self) -> Vec<CertificateDer<'static>> {
        self.serving_chain.clone()
    }

    /// The serving certificate's private key.
    pub fn serving_key(&self) -> PrivateKeyDer<'static> {
        self.serving_key.clone_key()
    }

    /// The serving certificate PEM as stored in `serving.crt`.
    pub fn serving_cert_pem(&self) -> &str {
        &self.serving_cert_pem
    }

    /// The serving key PEM as stored in `serving.key`.
    pub fn serving_key_pem(&self) -> &str {
        &self.serving_key_pem
    }

    /// The admin client certificate PEM (`system:admin` in `system:masters`), for the
    /// kubeconfig written on start.
    pub fn admin_cert_pem(&self) -> &str {
        &self.admin_cert_pem
    }

    /// The admin client key PEM (PKCS#8).
    pub fn admin_key_pem(&self) -> &str {
        &self.admin_key_pem
    }

    /// The service account token signing key: ECDSA P-256 PKCS#8 PEM (tokens are ES256).
    pub fn service_account_key_pem(&self) -> &str {
        &self.sa_key_pem
    }

    /// The service account token verification key: SubjectPublicKeyInfo PEM.
    pub fn service_account_public_key_pem(&self) -> &str {
        &self.sa_pub_pem
    }

    /// The full join token, `K10<ca hash>::server:<secret>`, as stored in `server/token`.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The secret part of the token (what `--token` sets).
    pub fn token_secret(&self) -> &str {
        &self.token_secret
    }

    /// Issues a client certificate (CN = user, each O = group) signed by the cluster CA,
    /// valid for one year; returns the certificate and a new PKCS#8 key, both PEM.
    pub fn issue_client_cert(&self, cn: &str, orgs: &[&str]) -> Result<(String, String), PkiError> {
        let key = cert::new_key(cn)?;
        let cert = LeafSpec::client(cn, orgs).issue(&key, &self.issuer)?;
        Ok((cert, key.serialize_pem()))
    }

    /// Issues a serving certificate for `sans` (DNS names or IP literals) signed by the
    /// cluster CA, valid for one year; returns the certificate and a new key, both PEM.
    /// For listeners other than the apiserver's (kubelet, metrics).
    pub fn issue_serving_cert(
        &self,
        cn: &str,
        sans: &[String],
    ) -> Result<(String, String), PkiError> {
        let key = cert::new_key(cn)?;
        let sans = sans.iter().map(|s| San::parse(s)).collect();
        let cert = LeafSpec::server(cn, &[], sans).issue(&key, &self.issuer)?;
        Ok((cert, key.serialize_pem()))
    }
}

/// Reads `ca.crt` + `ca.key`, or creates both when neither exists. Returns the CA PEM, its
/// key and whether it was created now.
pub(crate) fn load_or_create_ca(
    paths: &Paths,
    name: &str,
    cn: &str,
) -> Result<(String, KeyPair, bool), PkiError> {
    let (crt_path, key_path) = (
        paths.tls(&format!("{name}.crt")),
        paths.tls(&format!("{name}.key")),
    );
    match (read_optional(&crt_path)?, read_optional(&key_path)?) {
        (Some(pem), Some(key_pem)) => {
            let der = cert_from_pem(&crt_path, &pem)?;
            let info = inspect(&crt_path, &der, None)?;
            if !info.is_ca {
                return Err(PkiError::NotCa { path: crt_path });
            }
            let key = key_from_pem(&key_path, &key_pem)?;
            if !info.matches_key(&key) {
                return Err(PkiError::KeyMismatch {
                    cert: crt_path,
                    key: key_path,
                });
            }
            if info.expires_within(RENEW_BEFORE) {
                // Replacing a CA invalidates every kubeconfig and agent; that is an operator's
                // decision (k3s `certificate rotate-ca`), not something to do on a restart.
                warn!(file = %crt_path.display(), "{cn} expires within 90 days");
            }
            Ok((pem, key, false))
        }
        (None, None) => {
            let key = cert::new_key(cn)?;
            let pem = cert::new_ca(&key, cn)?;
            // Key first: a crash in between leaves a key without a certificate, which the
            // next start reports instead of pairing a new certificate with a lost key.
            write_atomic(&key_path, key.serialize_pem().as_bytes(), FILE_MODE)?;
            write_atomic(&crt_path, pem.as_bytes(), FILE_MODE)?;
            info!(file = %crt_path.display(), "created {cn}");
            Ok((pem, key, true))
        }
        (Some(_), None) => Err(PkiError::IncompletePair {
            present: crt_path,
            missing: key_path,
        }),
        (None, Some(_)) => Err(PkiError::IncompletePair {
            present: key_path,
            missing: crt_path,
        }),
    }
}

/// Reuses `<name>.crt` + `<name>.key` when they still fit `spec`, otherwise issues new ones.
pub(crate) fn ensure_leaf(
    paths: &Paths,
    name: &str,
    spec: &LeafSpec,
    issuer: &Issuer<'_, KeyPair>,
    ca_der: &CertificateDer<'_>,
) -> Result<(String, String), PkiError> {
    let (crt_path, key_path) = (
        paths.tls(&format!("{name}.crt")),
        paths.tls(&format!("{name}.key")),
    );
    let reason = match (read_optional(&crt_path)?, read_optional(&key_path)?) {
        (Some(pem), Some(key_pem)) => {
            let der = cert_from_pem(&crt_path, &pem)?;
            let info = inspect(&crt_path, &der, Some(ca_der))?;
            let key = key_from_pem(&key_path, &key_pem)?;
            match reissue_reason(&info, &key, spec) {
                None => return Ok((pem, key_pem)),
                Some(reason) => reason,
            }
        }
        (None, None) => String::new(),
        (Some(_), None) => format!("{} is missing", key_path.display()),
        (None, Some(_)) => format!("{} is missing", crt_path.display()),
    };
    let key = cert::new_key(name)?;
    let pem = spec.issue(&key, issuer)?;
    let key_pem = key.serialize_pem();
    write_atomic(&key_path, key_pem.as_bytes(), FILE_MODE)?;
    write_atomic(&crt_path, pem.as_bytes(), FILE_MODE)?;
    if reason.is_empty() {
        info!(file = %crt_path.display(), "created certificate");
    } else {
        info!(file = %crt_path.display(), %reason, "re-issued certificate");
    }
    Ok((pem, key_pem))
}

/// Why a stored leaf certificate cannot be reused, or `None` if it can.
fn reissue_reason(info: &CertInfo, key: &KeyPair, spec: &LeafSpec) -> Option<String> {
    if !info.matches_key(key) {
        return Some("certificate does not match its private key".into());
    }
    if !info.signed_by_issuer {
        return Some("certificate was not issued by the cluster ca".into());
    }
    if info.expires_within(RENEW_BEFORE) {
        return Some("certificate expires within 90 days".into());
    }
    let missing: Vec<String> = spec
        .sans
        .iter()
        .filter(|s| !info.sans.contains(s))
        .map(ToString::to_string)
        .collect();
    if !missing.is_empty() {
        return Some(format!("certificate does not cover {}", missing.join(", ")));
    }
    None
}

/// Reuses `service-account.key` (rewriting `service-account.pub` from it if needed) or
/// creates a new pair. Returns (private PEM, public PEM).
fn ensure_service_account_key(paths: &Paths) -> Result<(String, String), PkiError> {
    let (key_path, pub_path) = (
        paths.tls("service-account.key"),
        paths.tls("service-account.pub"),
    );
    let (key_pem, key) = match read_optional(&key_path)? {
        Some(pem) => {
            let key = key_from_pem(&key_path, &pem)?;
            (pem, key)
        }
        None => {
            let key = cert::new_key("service account")?;
            let pem = key.serialize_pem();
            write_atomic(&key_path, pem.as_bytes(), FILE_MODE)?;
            info!(file = %key_path.display(), "created service account signing key");
            (pem, key)
        }
    };
    let pub_pem = key.public_key_pem();
    if read_optional(&pub_path)?.as_deref() != Some(pub_pem.as_str()) {
        write_atomic(&pub_path, pub_pem.as_bytes(), FILE_MODE)?;
    }
    Ok((key_pem, pub_pem))
}

/// Settles the token: the existing file's secret, else the user's, else a random one; a user
/// secret that differs from an existing one is refused, as k3s does. Returns (token, secret).
fn ensure_token(
    path: &Path,
    user_token: Option<&str>,
    ca_hash: &str,
    ca_created: bool,
) -> Result<(String, String), PkiError> {
    let user = match user_token.map(str::trim).filter(|t| !t.is_empty()) {
        None => None,
        Some(t) => Some(parse_token(t).ok_or(PkiError::InvalidToken {
            reason: "expected a secret without whitespace or K10<sha256>::[user:]<secret>",
        })?),
    };
    if let Some(hash) = user.as_ref().and_then(|u| u.ca_hash.as_deref())
        && hash != ca_hash
    {
        if !ca_created {
            return Err(PkiError::TokenCaHashMismatch);
        }
        warn!("the --token ca hash belongs to another ca; keeping only its secret");
    }
    let stored = read_optional(path)?;
    let existing = match &stored {
        None => None,
        Some(text) => Some(parse_token(text).ok_or_else(|| PkiError::InvalidTokenFile {
            path: path.to_path_buf(),
            reason: "not a k3s-format token",
        })?),
    };
    let secret = match (existing, user) {
        (Some(e), Some(u)) if e.secret != u.secret => return Err(PkiError::TokenMismatch),
        (Some(e), _) => e.secret,
        (None, Some(u)) => u.secret,
        (None, None) => random_secret()?,
    };
    let token = format_token(ca_hash, &secret);
    if stored.as_deref().map(str::trim) != Some(token.as_str()) {
        write_atomic(path, format!("{token}\n").as_bytes(), FILE_MODE)?;
    }
    Ok((token, secret))
}

//! Certificate templates (CA, serving, client) and the checks that decide whether a stored
//! certificate can be reused.

use std::collections::HashSet;
use std::fmt;
use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use x509_parser::error::X509Error;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::{PkiError, der};

const DAY: u64 = 24 * 60 * 60;
/// CA lifetime: ten years, as k3s.
pub(crate) const CA_VALIDITY: Duration = Duration::from_secs(3650 * DAY);
/// Leaf certificate lifetime: one year, as k3s.
pub(crate) const LEAF_VALIDITY: Duration = Duration::from_secs(365 * DAY);
/// A leaf this close to expiry is re-issued on start (k3s renews within 90 days).
pub(crate) const RENEW_BEFORE: Duration = Duration::from_secs(90 * DAY);
/// Back-dating of `notBefore`, so a peer whose clock is slightly behind accepts a new cert.
const CLOCK_SKEW: Duration = Duration::from_secs(5 * 60);

/// Seconds since the Unix epoch.
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// x509-parser's nom wrapper, flattened to the error inside it.
pub(crate) fn nom_err(e: x509_parser::nom::Err<X509Error>) -> X509Error {
    match e {
        x509_parser::nom::Err::Error(e) | x509_parser::nom::Err::Failure(e) => e,
        x509_parser::nom::Err::Incomplete(_) => X509Error::InvalidCertificate,
    }
}

/// A subject alternative name, normalised so that requested and stored names compare equal.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum San {
    Dns(String),
    Ip(IpAddr),
}

impl San {
    /// An IP literal becomes an IP SAN, anything else a (lower-cased) DNS SAN.
    pub(crate) fn parse(s: &str) -> San {
        let s = s.trim();
        match s
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
        {
            Ok(ip) => San::Ip(ip),
            Err(_) => San::Dns(s.trim_end_matches('.').to_ascii_lowercase()),
        }
    }

    pub(crate) fn to_rcgen(&self) -> Result<SanType, PkiError> {
        match self {
            San::Ip(ip) => Ok(SanType::IpAddress(*ip)),
            San::Dns(name) => name
                .clone()
                .try_into()
                .map(SanType::DnsName)
                .map_err(|source| PkiError::InvalidSan {
                    name: name.clone(),
                    source,
                }),
        }
    }
}

impl fmt::Display for San {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            San::Dns(n) => f.write_str(n),
            San::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

/// What a leaf certificate says about its holder.
pub(crate) struct LeafSpec {
    pub(crate) common_name: String,
    pub(crate) organizations: Vec<String>,
    pub(crate) usages: Vec<ExtendedKeyUsagePurpose>,
    pub(crate) sans: Vec<San>,
}

impl LeafSpec {
    /// A client certificate: CN is the user, each O a group.
    pub(crate) fn client(cn: &str, orgs: &[&str]) -> LeafSpec {
        LeafSpec {
            common_name: cn.to_string(),
            organizations: orgs.iter().map(|o| o.to_string()).collect(),
            usages: vec![ExtendedKeyUsagePurpose::ClientAuth],
            sans: Vec::new(),
        }
    }

    /// A TLS server certificate for `sans`.
    pub(crate) fn server(cn: &str, orgs: &[&str], sans: Vec<San>) -> LeafSpec {
        LeafSpec {
            usages: vec![ExtendedKeyUsagePurpose::ServerAuth],
            sans,
            ..LeafSpec::client(cn, orgs)
        }
    }

    /// A certificate that serves TLS for `sans` and authenticates as a client too, as etcd
    /// members' are (peers dial each other with it; etcd's gateway dials etcd with it).
    pub(crate) fn server_client(cn: &str, sans: Vec<San>) -> LeafSpec {
        LeafSpec {
            usages: vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
            ..LeafSpec::server(cn, &[], sans)
        }
    }

    /// Signs a certificate for `key` with `issuer`, valid from (about) now for one year.
    pub(crate) fn issue(
        &self,
        key: &KeyPair,
        issuer: &rcgen::Issuer<'_, KeyPair>,
    ) -> Result<String, PkiError> {
        let what = || format!("certificate for {:?}", self.common_name);
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, self.common_name.as_str());
        params.distinguished_name = dn;
        params.subject_alt_names = self
            .sans
            .iter()
            .map(San::to_rcgen)
            .collect::<Result<_, _>>()?;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = self.usages.clone();
        params.use_authority_key_identifier_extension = true;
        set_validity(&mut params, LEAF_VALIDITY);
        let cert = params
            .signed_by(key, issuer)
            .map_err(|source| PkiError::Generate {
                what: what(),
                source,
            })?;
        // rcgen holds one value per attribute type; every O must reach the certificate.
        let subject = der::subject(&self.common_name, &self.organizations);
        let der = der::replace_subject(cert.der(), &subject, issuer.key())
            .unwrap_or(Err(rcgen::Error::CouldNotParseCertificate))
            .map_err(|source| PkiError::Generate {
                what: what(),
                source,
            })?;
        Ok(der::pem("CERTIFICATE", &der))
    }
}

/// A self-signed ECDSA P-256 CA named `k1s-ca@<unix time>` (k3s: `k3s-server-ca@<time>`).
pub(crate) fn new_ca(key: &KeyPair, cn: &str) -> Result<String, PkiError> {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, format!("{cn}@{}", unix_now()));
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
    ];
    set_validity(&mut params, CA_VALIDITY);
    let cert = params
        .self_signed(key)
        .map_err(|source| PkiError::Generate {
            what: format!("{cn} certificate"),
            source,
        })?;
    Ok(cert.pem())
}

/// A new ECDSA P-256 key.
pub(crate) fn new_key(what: &str) -> Result<KeyPair, PkiError> {
    KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(|source| PkiError::Generate {
        what: format!("{what} private key"),
        source,
    })
}

fn set_validity(params: &mut CertificateParams, validity: Duration) {
    let now = SystemTime::now();
    params.not_before = (now - CLOCK_SKEW).into();
    params.not_after = (now + validity).into();
}

/// Decodes the first certificate of a PEM file.
pub(crate) fn cert_from_pem(path: &Path, pem: &str) -> Result<CertificateDer<'static>, PkiError> {
    CertificateDer::from_pem_slice(pem.as_bytes()).map_err(|source| PkiError::Pem {
        path: path.to_path_buf(),
        kind: "certificate",
        source,
    })
}

/// Decodes a PKCS#8 private key PEM file.
pub(crate) fn key_from_pem(path: &Path, pem: &str) -> Result<KeyPair, PkiError> {
    KeyPair::from_pem(pem).map_err(|source| PkiError::Key {
        path: path.to_path_buf(),
        source,
    })
}

/// The facts about a stored certificate that decide whether it can be reused.
pub(crate) struct CertInfo {
    pub(crate) not_after: i64,
    pub(crate) is_ca: bool,
    pub(crate) public_key: Vec<u8>,
    pub(crate) sans: HashSet<San>,
    /// Whether the issuer passed to [`inspect`] signed it (`true` when none was passed).
    pub(crate) signed_by_issuer: bool,
}

impl CertInfo {
    /// Whether the certificate is past, or within `margin` of, its expiry.
    pub(crate) fn expires_within(&self, margin: Duration) -> bool {
        let deadline = i64::try_from(unix_now() + margin.as_secs()).unwrap_or(i64::MAX);
        self.not_after <= deadline
    }

    /// Whether `key` is the private half of this certificate's public key.
    pub(crate) fn matches_key(&self, key: &KeyPair) -> bool {
        self.public_key == key.public_key_raw()
    }
}

/// Parses the certificate stored at `path` and, if `issuer` is given, checks its signature.
pub(crate) fn inspect(
    path: &Path,
    der: &[u8],
    issuer: Option<&[u8]>,
) -> Result<CertInfo, PkiError> {
    let bad = |source| PkiError::Certificate {
        path: path.to_path_buf(),
        source,
    };
    let (_, cert) = X509Certificate::from_der(der).map_err(|e| bad(nom_err(e)))?;
    let mut sans = HashSet::new();
    if let Some(ext) = cert.subject_alternative_name().map_err(bad)? {
        for name in &ext.value.general_names {
            match name {
                GeneralName::DNSName(n) => {
                    sans.insert(San::Dns(n.to_ascii_lowercase()));
                }
                GeneralName::IPAddress(bytes) => {
                    if let Ok(b) = <[u8; 4]>::try_from(*bytes) {
                        sans.insert(San::Ip(IpAddr::from(b)));
                    } else if let Ok(b) = <[u8; 16]>::try_from(*bytes) {
                        sans.insert(San::Ip(IpAddr::from(b)));
                    }
                }
                _ => {}
            }
        }
    }
    let signed_by_issuer = match issuer {
        None => true,
        Some(issuer_der) => match X509Certificate::from_der(issuer_der) {
            Ok((_, ca)) => cert.verify_signature(Some(ca.public_key())).is_ok(),
            Err(_) => false,
        },
    };
    Ok(CertInfo {
        not_after: cert.validity().not_after.timestamp(),
        is_ca: cert.is_ca(),
        public_key: cert.public_key().subject_public_key.data.to_vec(),
        sans,
        signed_by_issuer,
    })
}

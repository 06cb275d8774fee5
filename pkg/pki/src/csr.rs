//! Certificate signing requests: a joining agent makes them (its kubelet's client and
//! serving certificates), the server reads what they ask for and signs approved ones with
//! the cluster CA (upstream's `pkg/controller/certificates/signer`).

use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use rcgen::{
    CertificateParams, CertificateSigningRequestParams, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyUsagePurpose,
};
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::FromDer;

use crate::cert::{self, San};
use crate::{CaSigner, PkiError, der};

/// What a certificate signing request asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CsrSubject {
    /// The subject's common name (the user of a client certificate).
    pub common_name: String,
    /// The subject's organizations (the groups of a client certificate).
    pub organizations: Vec<String>,
    /// DNS subject alternative names.
    pub dns_names: Vec<String>,
    /// IP subject alternative names.
    pub ip_addresses: Vec<IpAddr>,
    /// Whether it asks for email or URI alternative names too.
    pub other_names: bool,
}

fn bad(reason: impl Into<String>) -> PkiError {
    PkiError::Csr {
        reason: reason.into(),
    }
}

/// A new ECDSA P-256 key and a PEM request for a certificate naming `cn`, `orgs` and `sans`
/// (IPs or DNS names); returns (request PEM, key PEM).
pub fn new_csr(cn: &str, orgs: &[&str], sans: &[String]) -> Result<(String, String), PkiError> {
    let key = cert::new_key(cn)?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    // rcgen keeps one O; the kubelet's requests carry one group (system:nodes).
    if let Some(o) = orgs.first() {
        dn.push(DnType::OrganizationName, *o);
    }
    params.distinguished_name = dn;
    params.subject_alt_names = sans
        .iter()
        .map(|s| San::parse(s).to_rcgen())
        .collect::<Result<_, _>>()?;
    let csr = params
        .serialize_request(&key)
        .and_then(|c| c.pem())
        .map_err(|source| PkiError::Generate {
            what: format!("certificate signing request for {cn:?}"),
            source,
        })?;
    Ok((csr, key.serialize_pem()))
}

/// Reads the subject and alternative names of a PEM request (`spec.request`).
pub fn parse_csr(pem: &[u8]) -> Result<CsrSubject, PkiError> {
    let (_, block) = x509_parser::pem::parse_x509_pem(pem).map_err(|_| bad("not a PEM block"))?;
    if block.label != "CERTIFICATE REQUEST" {
        return Err(bad(format!("PEM block is {:?}", block.label)));
    }
    let (_, csr) = X509CertificationRequest::from_der(&block.contents)
        .map_err(|e| bad(format!("malformed request: {e}")))?;
    let subject = &csr.certification_request_info.subject;
    let text = |a: &x509_parser::x509::AttributeTypeAndValue<'_>| {
        a.as_str().map(str::to_string).unwrap_or_default()
    };
    let mut out = CsrSubject {
        common_name: subject
            .iter_common_name()
            .next()
            .map(text)
            .unwrap_or_default(),
        organizations: subject.iter_organization().map(text).collect(),
        ..CsrSubject::default()
    };
    for ext in csr.requested_extensions().into_iter().flatten() {
        if let ParsedExtension::SubjectAlternativeName(san) = ext {
            for name in &san.general_names {
                match name {
                    GeneralName::DNSName(d) => out.dns_names.push(d.to_string()),
                    GeneralName::IPAddress(b) => match b.len() {
                        4 => out
                            .ip_addresses
                            .push(IpAddr::from(<[u8; 4]>::try_from(*b).unwrap_or_default())),
                        16 => out
                            .ip_addresses
                            .push(IpAddr::from(<[u8; 16]>::try_from(*b).unwrap_or_default())),
                        _ => out.other_names = true,
                    },
                    _ => out.other_names = true,
                }
            }
        }
    }
    Ok(out)
}

impl CaSigner {
    /// Signs a PEM request with the cluster CA for the given key usages (upstream's names:
    /// `digital signature`, `key encipherment`, `client auth`, `server auth`), valid for
    /// `validity` (one year when none). Returns the certificate PEM.
    pub fn sign_csr(
        &self,
        csr_pem: &str,
        usages: &[String],
        validity: Option<Duration>,
    ) -> Result<String, PkiError> {
        let subject = parse_csr(csr_pem.as_bytes())?;
        let mut csr = CertificateSigningRequestParams::from_pem(csr_pem)
            .map_err(|e| bad(format!("cannot read the request: {e}")))?;
        let params = &mut csr.params;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages.clear();
        params.extended_key_usages.clear();
        for usage in usages {
            match usage.as_str() {
                "digital signature" => params.key_usages.push(KeyUsagePurpose::DigitalSignature),
                "key encipherment" => params.key_usages.push(KeyUsagePurpose::KeyEncipherment),
                "client auth" => params
                    .extended_key_usages
                    .push(ExtendedKeyUsagePurpose::ClientAuth),
                "server auth" => params
                    .extended_key_usages
                    .push(ExtendedKeyUsagePurpose::ServerAuth),
                other => return Err(bad(format!("unsupported usage {other:?}"))),
            }
        }
        params.use_authority_key_identifier_extension = true;
        let now = SystemTime::now();
        params.not_before = (now - Duration::from_secs(5 * 60)).into();
        params.not_after = (now + validity.unwrap_or(cert::LEAF_VALIDITY)).into();
        let cert = csr
            .signed_by(self.issuer())
            .map_err(|source| PkiError::Generate {
                what: format!("certificate for {:?}", subject.common_name),
                source,
            })?;
        // Every O of the request must reach the certificate (rcgen keeps one).
        let name = der::subject(&subject.common_name, &subject.organizations);
        let der = der::replace_subject(cert.der(), &name, self.issuer().key())
            .unwrap_or(Err(rcgen::Error::CouldNotParseCertificate))
            .map_err(|source| PkiError::Generate {
                what: format!("certificate for {:?}", subject.common_name),
                source,
            })?;
        Ok(der::pem("CERTIFICATE", &der))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ClientIdentity;

    #[test]
    fn a_request_round_trips_through_the_signer() {
        let dir = tempfile::tempdir().unwrap();
        crate::Pki::load_or_create(&crate::PkiOptions::new(dir.path(), "n")).unwrap();
        let signer = CaSigner::load(dir.path()).unwrap();
        let (csr, _key) = new_csr(
            "system:node:pi-2",
            &["system:nodes"],
            &["10.0.0.7".into(), "pi-2".into()],
        )
        .unwrap();
        let subject = parse_csr(csr.as_bytes()).unwrap();
        assert_eq!(subject.common_name, "system:node:pi-2");
        assert_eq!(subject.organizations, vec!["system:nodes".to_string()]);
        assert_eq!(subject.dns_names, vec!["pi-2".to_string()]);
        assert_eq!(
            subject.ip_addresses,
            vec!["10.0.0.7".parse::<IpAddr>().unwrap()]
        );
        let usages = ["digital signature".to_string(), "client auth".to_string()];
        let pem = signer.sign_csr(&csr, &usages, None).unwrap();
        use rustls::pki_types::pem::PemObject;
        let der = rustls::pki_types::CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
        let id = ClientIdentity::from_der(&der).unwrap();
        assert_eq!(id.user, "system:node:pi-2");
        assert_eq!(id.groups, vec!["system:nodes".to_string()]);
        assert!(
            signer
                .sign_csr(&csr, &["code signing".to_string()], None)
                .is_err()
        );
        assert!(parse_csr(b"nonsense").is_err());
    }
}

//! Who a client certificate names: Kubernetes reads the subject CN as the user and every O
//! as a group (upstream `x509.CommonNameUserConversion`).

use x509_parser::prelude::{FromDer, X509Certificate};

use crate::PkiError;

/// The user and groups a verified client certificate authenticates as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientIdentity {
    /// The subject common name, e.g. `system:admin` or `system:node:<name>`.
    pub user: String,
    /// Every subject organization, in certificate order, e.g. `["system:masters"]`.
    pub groups: Vec<String>,
}

impl ClientIdentity {
    /// Reads the identity from a DER certificate (the first one a TLS peer presented). It does
    /// not verify the certificate: the TLS handshake already did.
    pub fn from_der(der: &[u8]) -> Result<ClientIdentity, PkiError> {
        let (_, cert) =
            X509Certificate::from_der(der).map_err(|e| PkiError::ClientCertificate {
                source: crate::cert::nom_err(e),
            })?;
        let subject = cert.subject();
        let user = subject
            .iter_common_name()
            .find_map(|a| a.as_str().ok())
            .filter(|cn| !cn.is_empty())
            .ok_or(PkiError::NoCommonName)?
            .to_string();
        let groups = subject
            .iter_organization()
            .filter_map(|a| a.as_str().ok())
            .map(str::to_string)
            .collect();
        Ok(ClientIdentity { user, groups })
    }
}

//! certificates.k8s.io/v1: CertificateSigningRequests.

pub mod csr;
pub mod pem;

pub use csr::CsrStrategy;

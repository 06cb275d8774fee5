//! The one error type of k1s-pki: every variant names the file or operation that failed.

use std::path::PathBuf;

/// Errors from creating, loading or using the cluster's certificates, keys and token.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// Bootstrap data could not be sealed or opened with the token.
    #[error("bootstrap data: {reason}")]
    Seal {
        /// What went wrong.
        reason: &'static str,
    },

    /// A file exists but could not be read.
    #[error("failed to read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },

    /// A file could not be written, synced or renamed into place.
    #[error("failed to write {path}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },

    /// A directory could not be created or its permissions set.
    #[error("failed to create directory {path}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },

    /// A file does not hold the PEM section expected of it.
    #[error("{path} does not contain a valid pem {kind}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What the file should hold ("certificate", "private key").
        kind: &'static str,
        /// The cause.
        #[source]
        source: rustls::pki_types::pem::Error,
    },

    /// A file holds a PEM certificate that is not a parsable X.509 certificate.
    #[error("{path} does not contain a valid x509 certificate")]
    Certificate {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: x509_parser::error::X509Error,
    },

    /// A file holds a private key that cannot be used (not PKCS#8, unsupported algorithm).
    #[error("{path} does not contain a usable private key")]
    Key {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: rcgen::Error,
    },

    /// A certificate and the private key beside it do not belong together.
    #[error("private key {key} does not match certificate {cert}")]
    KeyMismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
    },

    /// The CA certificate is not a CA (no basicConstraints CA:TRUE).
    #[error("{path} is not a ca certificate")]
    NotCa {
        /// The file.
        path: PathBuf,
    },

    /// Only one half of a certificate/key pair exists, so it cannot be reused or replaced safely.
    #[error("found {present} but not {missing}; restore it or remove both to create a new pair")]
    IncompletePair {
        /// The file that exists.
        present: PathBuf,
        /// The file that is missing.
        missing: PathBuf,
    },

    /// A certificate or key could not be generated or signed.
    #[error("failed to generate {what}")]
    Generate {
        /// What was being generated.
        what: String,
        /// The cause.
        #[source]
        source: rcgen::Error,
    },

    /// A requested subject alternative name cannot be put into a certificate.
    #[error("invalid subject alternative name {name:?}")]
    InvalidSan {
        /// The name.
        name: String,
        /// The cause.
        #[source]
        source: rcgen::Error,
    },

    /// The system random number generator failed.
    #[error("failed to generate random {what}")]
    Random {
        /// What the randomness was for.
        what: &'static str,
    },

    /// The token file exists but does not hold a token.
    #[error("invalid token in {path}: {reason}")]
    InvalidTokenFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// The token given by the user (`--token`) is unusable.
    #[error("invalid token: {reason}")]
    InvalidToken {
        /// What is wrong with it.
        reason: &'static str,
    },

    /// The user gave a token whose secret differs from the one the cluster was created with.
    #[error("token does not match the cluster's existing token")]
    TokenMismatch,

    /// The user gave a full (K10) token whose CA hash is not this cluster's CA.
    #[error("token ca hash does not match the cluster's ca certificate")]
    TokenCaHashMismatch,

    /// The rustls server configuration could not be built.
    #[error("failed to build tls server config")]
    TlsConfig {
        /// The cause.
        #[source]
        source: rustls::Error,
    },

    /// The client certificate verifier could not be built.
    #[error("failed to build client certificate verifier")]
    ClientVerifier {
        /// The cause.
        #[source]
        source: rustls::server::VerifierBuilderError,
    },

    /// A client certificate presented on a connection could not be parsed.
    #[error("failed to parse client certificate")]
    ClientCertificate {
        /// The cause.
        #[source]
        source: x509_parser::error::X509Error,
    },

    /// A certificate signing request could not be parsed, made or signed.
    #[error("certificate signing request: {reason}")]
    Csr {
        /// What is wrong with it.
        reason: String,
    },

    /// A client certificate has no (UTF-8) common name, so it names no user.
    #[error("client certificate has no common name")]
    NoCommonName,
}

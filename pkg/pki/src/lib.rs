//! k1s-pki: the cluster's certificate authority, the certificates and keys issued from it,
//! the join token and kubeconfigs — rcgen and rustls with the ring backend, no OpenSSL.
//!
//! On start the server calls [`Pki::load_or_create`], serves TLS with
//! [`server_tls_config`], maps peer certificates to users with [`ClientIdentity::from_der`]
//! and writes the admin kubeconfig with [`kubeconfig`] + [`write_kubeconfig`].

mod cert;
mod csr;
mod der;
mod error;
mod etcd;
mod fs;
mod identity;
mod kubeconfig;
mod kubelet;
mod pki;
pub mod seal;
mod tls;
mod token;

#[cfg(test)]
mod tests;

pub use csr::{CsrSubject, new_csr, parse_csr};
pub use error::PkiError;
pub use etcd::EtcdTlsFiles;
pub use identity::ClientIdentity;
pub use kubeconfig::{kubeconfig, write_kubeconfig};
pub use kubelet::{
    CaSigner, KUBELET_CLIENT_GROUP, KUBELET_CLIENT_USER, kubelet_client_tls_config,
    kubelet_server_tls_config,
};
pub use pki::{AUTH_PROXY_USER, Pki, PkiOptions};
pub use tls::{ca_root_store, crypto_provider, server_tls_config};
pub use token::{
    ParsedToken, SERVER_TOKEN_USER, TOKEN_PREFIX, bootstrap_token, ca_hash, format_token,
    parse_token,
};

//! Wiring of each subcommand.

pub mod agent;
mod bootstrap;
pub mod check_config;
pub mod datastore;
mod dns;
mod election;
mod etcd;
mod etcd_members;
pub mod etcd_snapshot;
pub mod image;
mod ingress;
mod join;
pub mod killall;
mod kubeconfig_secret;
pub mod kubectl;
mod node;
pub mod secrets_encrypt;
pub mod server;
pub mod simulate;
mod startup_pages;

/// Parses a `--dns-listen` address.
pub(crate) fn dns_listen(s: &str) -> Result<std::net::SocketAddr, String> {
    dns::parse_listen(s)
}

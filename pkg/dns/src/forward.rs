//! Names outside the cluster: sent to the host's resolvers through hickory's resolver,
//! whose cache (positive and negative, by TTL) is CoreDNS's `cache` plugin here.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, Record, RecordType};
use hickory_proto::xfer::Protocol;
use hickory_proto::{ProtoError, ProtoErrorKind};
use hickory_resolver::TokioResolver;
use hickory_resolver::config::{
    NameServerConfig, NameServerConfigGroup, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::name_server::TokioConnectionProvider;

/// The upstream answer to one forwarded query.
#[derive(Debug)]
pub enum Forwarded {
    /// The records (a CNAME chain included), TTLs counting down from the cache.
    Records(Vec<Record>),
    /// NXDOMAIN, or NOERROR without records, with the upstream's SOA when it sent one.
    Negative {
        /// NXDomain or NoError.
        code: ResponseCode,
        /// The SOA of the upstream zone, for the authority section.
        soa: Option<Box<Record>>,
    },
    /// Every upstream failed or timed out (the client gets SERVFAIL).
    Failed,
}

/// A caching forwarder to fixed upstream servers.
pub struct Forwarder {
    resolver: TokioResolver,
}

impl std::fmt::Debug for Forwarder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Forwarder").finish_non_exhaustive()
    }
}

impl Forwarder {
    /// A forwarder asking `upstreams` (UDP, TCP when truncated), in order.
    pub fn new(upstreams: &[SocketAddr]) -> Self {
        let mut group = NameServerConfigGroup::with_capacity(upstreams.len() * 2);
        for addr in upstreams {
            for protocol in [Protocol::Udp, Protocol::Tcp] {
                let mut ns = NameServerConfig::new(*addr, protocol);
                // An upstream's NXDOMAIN is the answer, not a reason to ask the next one.
                ns.trust_negative_responses = true;
                group.push(ns);
            }
        }
        let config = ResolverConfig::from_parts(None, Vec::new(), group);
        let mut opts = ResolverOpts::default();
        opts.ndots = 0;
        opts.timeout = Duration::from_secs(2);
        opts.attempts = 2;
        opts.cache_size = 10_000;
        opts.preserve_intermediates = true;
        opts.use_hosts_file = ResolveHosts::Never;
        opts.try_tcp_on_error = true;
        // CoreDNS's cache plugin caps positive answers at an hour and negative at 30 min.
        opts.positive_max_ttl = Some(Duration::from_secs(3600));
        opts.negative_max_ttl = Some(Duration::from_secs(1800));
        let resolver =
            TokioResolver::builder_with_config(config, TokioConnectionProvider::default())
                .with_options(opts)
                .build();
        Self { resolver }
    }

    /// Asks the upstreams (or the cache) for `name`/`qtype`.
    pub async fn forward(&self, name: &Name, qtype: RecordType) -> Forwarded {
        let mut name = name.clone();
        name.set_fqdn(true);
        match self.resolver.lookup(name, qtype).await {
            Ok(lookup) => {
                let left = lookup
                    .valid_until()
                    .saturating_duration_since(Instant::now())
                    .as_secs();
                let left = u32::try_from(left).unwrap_or(u32::MAX);
                let records = lookup
                    .records()
                    .iter()
                    .map(|r| {
                        let mut r = r.clone();
                        r.set_ttl(r.ttl().min(left));
                        r
                    })
                    .collect();
                Forwarded::Records(records)
            }
            Err(e) => match e.proto().map(ProtoError::kind) {
                Some(ProtoErrorKind::NoRecordsFound {
                    response_code, soa, ..
                }) if matches!(
                    *response_code,
                    ResponseCode::NXDomain | ResponseCode::NoError
                ) =>
                {
                    Forwarded::Negative {
                        code: *response_code,
                        soa: soa
                            .as_ref()
                            .map(|s| Box::new(s.as_ref().clone().into_record_of_rdata())),
                    }
                }
                _ => {
                    tracing::debug!(error = %e, "forwarded query failed");
                    Forwarded::Failed
                }
            },
        }
    }
}

/// The `nameserver`s of a resolv.conf, port 53, leaving out loopback addresses and
/// `own` (a resolver there may be this server, and asking it would loop). When none is
/// left, systemd-resolved's list of real upstreams is read instead, as k3s does.
pub fn resolv_conf_servers(path: &Path, own: &[IpAddr]) -> Vec<SocketAddr> {
    let read = |p: &Path| -> Vec<SocketAddr> {
        let Ok(text) = std::fs::read_to_string(p) else {
            return Vec::new();
        };
        text.lines()
            .filter_map(|line| {
                let mut words = line.split_whitespace();
                (words.next() == Some("nameserver")).then(|| words.next())?
            })
            // A link-local IPv6 address may carry a zone (`fe80::1%eth0`): not supported.
            .filter_map(|w| w.parse::<IpAddr>().ok())
            .filter(|ip| !ip.is_loopback() && !ip.is_unspecified() && !own.contains(ip))
            .map(|ip| SocketAddr::new(ip, 53))
            .collect()
    };
    let found = read(path);
    if !found.is_empty() {
        return found;
    }
    read(Path::new("/run/systemd/resolve/resolv.conf"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_skips_loopback_and_own_addresses() {
        let dir = std::env::temp_dir().join(format!("k1s-dns-resolv-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("resolv.conf");
        std::fs::write(
            &path,
            "# comment\nsearch example.com\nnameserver 127.0.0.53\nnameserver 10.43.0.10\n\
             nameserver 192.0.2.1\nnameserver ::1\nnameserver 2001:db8::1\noptions ndots:5\n",
        )
        .expect("write");
        let own: Vec<IpAddr> = vec!["10.43.0.10".parse().expect("ip")];
        let servers = resolv_conf_servers(&path, &own);
        assert_eq!(
            servers,
            vec![
                "192.0.2.1:53".parse::<SocketAddr>().expect("addr"),
                "[2001:db8::1]:53".parse().expect("addr"),
            ]
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}

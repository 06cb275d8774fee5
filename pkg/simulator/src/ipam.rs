//! Addresses of simulated nodes: one `podCIDR` per node carved from the cluster range,
//! node IPs from the node range, and pod IPs handed out inside a node's `podCIDR`.

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use crate::Error;

/// Splits `range` into `count` equal subnets, each at most a /24 (upstream's node IPAM
/// default mask) and at least a /26 (62 pod addresses, twice upstream's density of 30
/// pods per node).
pub(crate) fn split(range: Ipv4Net, count: usize) -> Result<Vec<Ipv4Net>, Error> {
    let count = count.max(1);
    let bits_needed = usize::BITS - (count - 1).leading_zeros();
    let prefix = (u32::from(range.prefix_len()) + bits_needed).max(24);
    if prefix > 26 {
        return Err(Error::Config(format!(
            "the pod range {range} is too small for {count} nodes (each needs at least a /26)"
        )));
    }
    let prefix = u8::try_from(prefix).map_err(|_| Error::Config("bad prefix".into()))?;
    let subnets = range
        .subnets(prefix)
        .map_err(|e| Error::Config(e.to_string()))?;
    Ok(subnets.take(count).collect())
}

/// The InternalIP of node `i`: the `i+1`th address of `range`.
pub(crate) fn node_ip(range: Ipv4Net, i: usize) -> Result<Ipv4Addr, Error> {
    let offset = u32::try_from(i + 1).map_err(|_| Error::Config("too many nodes".into()))?;
    let ip = u32::from(range.network()).saturating_add(offset);
    let ip = Ipv4Addr::from(ip);
    if !range.contains(&ip) || ip == range.broadcast() {
        return Err(Error::Config(format!(
            "the node range {range} is too small"
        )));
    }
    Ok(ip)
}

/// Pod IPs in use on one node, keyed by pod uid.
#[derive(Debug, Default)]
pub(crate) struct NodeIps {
    by_pod: HashMap<String, Ipv4Addr>,
    used: HashSet<Ipv4Addr>,
    next: u32,
}

impl NodeIps {
    /// The pod's address: the one it has, else the next free one of `cidr` (the network
    /// address, the gateway `.1` and the broadcast address are skipped). When every
    /// address is taken, one is shared (logged): a simulation must not stop there.
    pub(crate) fn assign(&mut self, cidr: Ipv4Net, uid: &str) -> Ipv4Addr {
        if let Some(ip) = self.by_pod.get(uid) {
            return *ip;
        }
        let base = u32::from(cidr.network());
        let size = 1u32 << (32 - u32::from(cidr.prefix_len()));
        let hosts = size.saturating_sub(3).max(1);
        let mut chosen = None;
        for _ in 0..hosts {
            let ip = Ipv4Addr::from(base + 2 + (self.next % hosts));
            self.next = self.next.wrapping_add(1);
            if !self.used.contains(&ip) {
                chosen = Some(ip);
                break;
            }
        }
        let ip = chosen.unwrap_or_else(|| {
            tracing::warn!(%cidr, "every pod address of the node is taken; sharing one");
            Ipv4Addr::from(base + 2)
        });
        self.used.insert(ip);
        self.by_pod.insert(uid.to_string(), ip);
        ip
    }

    /// Records an address a pod already has (after a restart of the simulator).
    pub(crate) fn adopt(&mut self, uid: &str, ip: Ipv4Addr) {
        self.used.insert(ip);
        self.by_pod.insert(uid.to_string(), ip);
    }

    /// Frees a pod's address.
    pub(crate) fn release(&mut self, uid: &str) {
        if let Some(ip) = self.by_pod.remove(uid) {
            self.used.remove(&ip);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_split_into_node_subnets() {
        let range: Ipv4Net = "10.42.0.0/16".parse().expect("cidr");
        let three = split(range, 3).expect("3 nodes");
        assert_eq!(three[0].to_string(), "10.42.0.0/24");
        assert_eq!(three[2].to_string(), "10.42.2.0/24");
        let many = split(range, 1000).expect("1000 nodes");
        assert_eq!(many.len(), 1000);
        assert_eq!(many[1].to_string(), "10.42.0.64/26");
        assert!(split(range, 2000).is_err());
    }

    #[test]
    fn pod_addresses_are_unique_and_reused_after_release() {
        let cidr: Ipv4Net = "10.42.1.0/24".parse().expect("cidr");
        let mut ips = NodeIps::default();
        let a = ips.assign(cidr, "a");
        let b = ips.assign(cidr, "b");
        assert_eq!(a.to_string(), "10.42.1.2");
        assert_eq!(b.to_string(), "10.42.1.3");
        assert_eq!(ips.assign(cidr, "a"), a);
        ips.release("a");
        let node_ip = node_ip("172.16.0.0/12".parse().expect("cidr"), 0).expect("ip");
        assert_eq!(node_ip.to_string(), "172.16.0.1");
    }
}

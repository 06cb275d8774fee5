//! The subnets of a cluster CIDR as a bitmap (upstream's `cidrset`): allocation goes round
//! the range from after the last subnet handed out; occupying marks every subnet a CIDR
//! overlaps.

use std::net::IpAddr;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// The most subnet bits a cluster CIDR may be split by (upstream's limit: 2^16 subnets).
const MAX_SUBNET_BITS: u8 = 16;

/// Why a [`CidrSet`] refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidrSetError {
    /// The node mask does not fit the cluster CIDR.
    #[error("invalid node CIDR mask size {mask} for cluster CIDR {cidr}")]
    BadMask {
        /// The cluster CIDR.
        cidr: IpNet,
        /// The node mask size.
        mask: u8,
    },
    /// Every subnet is taken (upstream's `ErrCIDRRangeNoCIDRsRemaining`).
    #[error(
        "CIDR allocation failed; there are no remaining CIDRs left to allocate in the accepted range"
    )]
    Full,
    /// The CIDR is not inside the cluster CIDR.
    #[error("cidr {cidr} is out the range of cluster cidr {cluster}")]
    OutOfRange {
        /// The CIDR.
        cidr: IpNet,
        /// The cluster CIDR.
        cluster: IpNet,
    },
}

/// The subnets of size `mask` of a cluster CIDR, each free or taken.
#[derive(Debug, Clone)]
pub struct CidrSet {
    cluster: IpNet,
    mask: u8,
    taken: Vec<bool>,
    next: usize,
    /// Ranges never handed out (the Service range), taken again after [`Self::clear`].
    reserved: Vec<IpNet>,
}

impl CidrSet {
    /// The set of `cluster`'s subnets of prefix length `mask`.
    pub fn new(cluster: IpNet, mask: u8) -> Result<Self, CidrSetError> {
        let cluster = cluster.trunc();
        let bad = CidrSetError::BadMask {
            cidr: cluster,
            mask,
        };
        if mask < cluster.prefix_len()
            || mask > cluster.max_prefix_len()
            || mask - cluster.prefix_len() > MAX_SUBNET_BITS
        {
            return Err(bad);
        }
        let count = 1usize << (mask - cluster.prefix_len());
        Ok(Self {
            cluster,
            mask,
            taken: vec![false; count],
            next: 0,
            reserved: Vec::new(),
        })
    }

    /// The cluster CIDR.
    pub fn cluster(&self) -> IpNet {
        self.cluster
    }

    /// Forgets every allocation (reserved ranges stay taken).
    pub fn clear(&mut self) {
        self.taken.iter_mut().for_each(|t| *t = false);
        for cidr in self.reserved.clone() {
            self.take_overlap(cidr);
        }
    }

    /// Never hands out a subnet overlapping `cidr` (upstream filters the Service range
    /// out of the cluster CIDR this way); one that does not overlap changes nothing.
    pub fn reserve(&mut self, cidr: IpNet) {
        self.reserved.push(cidr);
        self.take_overlap(cidr);
    }

    fn take_overlap(&mut self, cidr: IpNet) {
        if self.occupy(cidr).is_err() && cidr.contains(&self.cluster.network()) {
            // It holds the whole cluster CIDR.
            self.taken.iter_mut().for_each(|t| *t = true);
        }
    }

    /// How many subnets are free.
    pub fn free(&self) -> usize {
        self.taken.iter().filter(|t| !**t).count()
    }

    fn shift(&self) -> u32 {
        u32::from(self.cluster.max_prefix_len() - self.mask)
    }

    fn addr_bits(ip: IpAddr) -> u128 {
        match ip {
            IpAddr::V4(ip) => u128::from(u32::from(ip)),
            IpAddr::V6(ip) => u128::from(ip),
        }
    }

    /// The subnet at `index`.
    fn subnet(&self, index: usize) -> IpNet {
        let base = Self::addr_bits(self.cluster.network());
        let addr = base + ((index as u128) << self.shift());
        match self.cluster {
            // Both fit: the index is below 2^16 and the shift keeps it inside the family.
            IpNet::V4(_) => IpNet::V4(
                Ipv4Net::new((addr as u32).into(), self.mask).unwrap_or_else(|_| unreachable!()),
            ),
            IpNet::V6(_) => {
                IpNet::V6(Ipv6Net::new(addr.into(), self.mask).unwrap_or_else(|_| unreachable!()))
            }
        }
    }

    /// The index of the subnet holding `ip` (which must be inside the cluster CIDR).
    fn index_of(&self, ip: IpAddr) -> usize {
        let offset = Self::addr_bits(ip) - Self::addr_bits(self.cluster.network());
        (offset >> self.shift()) as usize
    }

    /// Takes the next free subnet.
    pub fn allocate_next(&mut self) -> Result<IpNet, CidrSetError> {
        let count = self.taken.len();
        for step in 0..count {
            let index = (self.next + step) % count;
            if !self.taken[index] {
                self.taken[index] = true;
                self.next = (index + 1) % count;
                return Ok(self.subnet(index));
            }
        }
        Err(CidrSetError::Full)
    }

    /// The subnet indices `cidr` overlaps, if it is inside the cluster CIDR.
    fn span(&self, cidr: IpNet) -> Result<(usize, usize), CidrSetError> {
        let cidr = cidr.trunc();
        let out = CidrSetError::OutOfRange {
            cidr,
            cluster: self.cluster,
        };
        let same_family = matches!(
            (cidr, self.cluster),
            (IpNet::V4(_), IpNet::V4(_)) | (IpNet::V6(_), IpNet::V6(_))
        );
        if !same_family || !self.cluster.contains(&cidr.network()) {
            return Err(out);
        }
        let first = self.index_of(cidr.network());
        let last = if self.cluster.contains(&cidr.broadcast()) {
            self.index_of(cidr.broadcast())
        } else {
            self.taken.len() - 1
        };
        Ok((first, last))
    }

    /// Marks every subnet `cidr` overlaps as taken.
    pub fn occupy(&mut self, cidr: IpNet) -> Result<(), CidrSetError> {
        let (first, last) = self.span(cidr)?;
        self.taken[first..=last].iter_mut().for_each(|t| *t = true);
        Ok(())
    }

    /// Frees every subnet `cidr` overlaps; one outside the cluster CIDR is ignored.
    pub fn release(&mut self, cidr: IpNet) {
        if let Ok((first, last)) = self.span(cidr) {
            self.taken[first..=last].iter_mut().for_each(|t| *t = false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().expect("cidr")
    }

    #[test]
    fn hands_out_subnets_in_order_and_goes_round() {
        let mut set = CidrSet::new(net("10.42.0.0/22"), 24).expect("set");
        assert_eq!(set.allocate_next(), Ok(net("10.42.0.0/24")));
        assert_eq!(set.allocate_next(), Ok(net("10.42.1.0/24")));
        set.release(net("10.42.0.0/24"));
        // Round robin: .2 and .3 first, then the freed .0.
        assert_eq!(set.allocate_next(), Ok(net("10.42.2.0/24")));
        assert_eq!(set.allocate_next(), Ok(net("10.42.3.0/24")));
        assert_eq!(set.allocate_next(), Ok(net("10.42.0.0/24")));
        assert_eq!(set.allocate_next(), Err(CidrSetError::Full));
    }

    #[test]
    fn occupying_marks_every_overlapped_subnet() {
        let mut set = CidrSet::new(net("10.42.0.0/16"), 24).expect("set");
        set.occupy(net("10.42.0.0/23")).expect("a /23");
        set.occupy(net("10.42.2.64/26")).expect("a /26");
        assert_eq!(set.allocate_next(), Ok(net("10.42.3.0/24")));
        assert!(matches!(
            set.occupy(net("10.43.0.0/24")),
            Err(CidrSetError::OutOfRange { .. })
        ));
        assert_eq!(set.free(), 256 - 4);
    }

    #[test]
    fn a_reserved_range_is_never_handed_out() {
        let mut set = CidrSet::new(net("10.0.0.0/22"), 24).expect("set");
        set.reserve(net("10.0.1.0/24"));
        set.reserve(net("192.168.0.0/16"));
        set.clear();
        assert_eq!(set.allocate_next(), Ok(net("10.0.0.0/24")));
        assert_eq!(set.allocate_next(), Ok(net("10.0.2.0/24")));
        let mut all = CidrSet::new(net("10.0.0.0/22"), 24).expect("set");
        all.reserve(net("10.0.0.0/8"));
        assert_eq!(all.allocate_next(), Err(CidrSetError::Full));
    }

    #[test]
    fn ipv6_and_bad_masks() {
        let mut set = CidrSet::new(net("fd00:42::/56"), 64).expect("set");
        assert_eq!(set.allocate_next(), Ok(net("fd00:42::/64")));
        assert_eq!(set.allocate_next(), Ok(net("fd00:42:0:1::/64")));
        assert!(CidrSet::new(net("10.0.0.0/8"), 25).is_err(), "2^17 subnets");
        assert!(CidrSet::new(net("10.42.0.0/16"), 8).is_err());
    }
}

//! IP and CIDR checks of the core, networking and discovery kinds, as upstream's
//! `util/validation/ip.go` and `k8s.io/utils/net` do them in 1.35 (StrictIPCIDRValidation
//! is off by default, so "legacy" fields still accept what Go's old sloppy parser
//! accepted: IPv4 octets with leading zeros, IPv4-mapped IPv6, host bits in a CIDR).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use k1s_apimachinery::validation::is_dns1123_subdomain;
use k1s_apimachinery::{ErrorList, FieldError, Path};

use super::invalid_each;

/// Upstream's message for a value that is not an IP at all.
pub const INVALID_IP_MSG: &str = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)";
/// Upstream's message for a value that is not a CIDR at all.
pub const INVALID_CIDR_MSG: &str =
    "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)";

/// Go's legacy decimal parse of an IPv4 octet list: four dot-separated runs of digits,
/// each at most 255, leading zeros allowed (taken as decimal).
fn parse_v4_sloppy(s: &str) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut parts = s.split('.');
    for o in &mut octets {
        let part = parts.next()?;
        if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let digits = part.trim_start_matches('0');
        if digits.len() > 3 {
            return None;
        }
        let n: u16 = if digits.is_empty() {
            0
        } else {
            digits.parse().ok()?
        };
        *o = u8::try_from(n).ok()?;
    }
    if parts.next().is_some() {
        return None;
    }
    Some(Ipv4Addr::from(octets))
}

/// `netutils.ParseIPSloppy`: an IPv4 or IPv6 address, where IPv4 octets (also the
/// dotted tail of an IPv6 address) may carry leading zeros.
pub fn parse_ip_sloppy(s: &str) -> Option<IpAddr> {
    if !s.contains(':') {
        return parse_v4_sloppy(s).map(IpAddr::V4);
    }
    if let Ok(ip) = s.parse::<Ipv6Addr>() {
        return Some(IpAddr::V6(ip));
    }
    // A dotted IPv4 tail with leading zeros: rewrite it without them and parse again.
    let (head, tail) = s.rsplit_once(':')?;
    if !tail.contains('.') {
        return None;
    }
    let v4 = parse_v4_sloppy(tail)?;
    format!("{head}:{v4}")
        .parse::<Ipv6Addr>()
        .ok()
        .map(IpAddr::V6)
}

/// `netip.ParseAddr` (strict): no leading zeros and no zone.
fn parse_ip_strict(s: &str) -> Option<IpAddr> {
    if s.contains('%') {
        return None;
    }
    s.parse::<IpAddr>().ok()
}

/// Go's `ip.To4() != nil`: IPv4, or IPv4-mapped IPv6.
pub fn is_ipv4_like(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(_) => true,
        IpAddr::V6(v6) => v6.to_ipv4_mapped().is_some(),
    }
}

/// The address as IPv4 when it is IPv4-like (Go treats a mapped address as IPv4).
fn as_v4(ip: IpAddr) -> Option<Ipv4Addr> {
    match ip {
        IpAddr::V4(v4) => Some(v4),
        IpAddr::V6(v6) => v6.to_ipv4_mapped(),
    }
}

/// `IsValidIPForLegacyField` with strict validation off: only unparseable values fail.
pub fn legacy_ip_errors(value: &str) -> Vec<String> {
    match parse_ip_sloppy(value) {
        Some(_) => Vec::new(),
        None => vec![INVALID_IP_MSG.to_string()],
    }
}

/// `IsValidIPv4Address`.
pub fn ipv4_errors(value: &str) -> Vec<String> {
    match parse_ip_sloppy(value) {
        Some(ip) if is_ipv4_like(ip) => Vec::new(),
        _ => vec!["must be a valid IPv4 address".to_string()],
    }
}

/// `IsValidIPv6Address`.
pub fn ipv6_errors(value: &str) -> Vec<String> {
    match parse_ip_sloppy(value) {
        Some(ip) if !is_ipv4_like(ip) => Vec::new(),
        _ => vec!["must be a valid IPv6 address".to_string()],
    }
}

/// `ValidateEndpointIP` (formerly `ValidateNonSpecialIP`): unspecified, loopback (unless `allow_loopback`), link-local
/// unicast and link-local multicast addresses are refused.
pub fn non_special_ip_errors(value: &str, allow_loopback: bool) -> Vec<String> {
    let Some(ip) = parse_ip_sloppy(value) else {
        return vec!["must be a valid IP address".to_string()];
    };
    let mut errs = Vec::new();
    let (unspecified, loopback, link_local, ll_multicast) = match as_v4(ip) {
        Some(v4) => {
            let o = v4.octets();
            (
                v4.is_unspecified(),
                o[0] == 127,
                o[0] == 169 && o[1] == 254,
                o[0] == 224 && o[1] == 0 && o[2] == 0,
            )
        }
        None => {
            let IpAddr::V6(v6) = ip else {
                return errs;
            };
            let seg = v6.segments();
            (
                v6.is_unspecified(),
                v6.is_loopback(),
                seg[0] & 0xffc0 == 0xfe80,
                seg[0] & 0xff0f == 0xff02,
            )
        }
    };
    if unspecified {
        errs.push(format!("may not be unspecified ({value})"));
    }
    if loopback && !allow_loopback {
        errs.push("may not be in the loopback range (127.0.0.0/8, ::1/128)".to_string());
    }
    if link_local {
        errs.push("may not be in the link-local range (169.254.0.0/16, fe80::/10)".to_string());
    }
    if ll_multicast {
        errs.push(
            "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)".to_string(),
        );
    }
    errs
}

/// [`legacy_ip_errors`] at `path` (pod DNS nameservers, host aliases).
pub fn validate_legacy_ip(value: &str, path: &Path) -> ErrorList {
    invalid_each(value, path, legacy_ip_errors(value))
}

/// [`non_special_ip_errors`] without loopback at `path` (Endpoints addresses, a
/// Service's external IPs).
pub fn validate_non_special_ip(value: &str, path: &Path) -> ErrorList {
    invalid_each(value, path, non_special_ip_errors(value, false))
}

/// [`legacy_cidr_errors`] at `path` (node pod CIDRs, load balancer source ranges).
pub fn validate_legacy_cidr(value: &str, path: &Path) -> ErrorList {
    invalid_each(value, path, legacy_cidr_errors(value))
}

/// A load balancer ingress `hostname` (Services, Ingresses): a DNS subdomain, and not an
/// IP address.
pub fn validate_lb_hostname(host: &str, path: &Path) -> ErrorList {
    let mut errs = invalid_each(host, path, is_dns1123_subdomain(host));
    if parse_ip_sloppy(host).is_some() {
        errs.push(FieldError::invalid(
            path,
            host,
            "must be a DNS name, not an IP address",
        ));
    }
    errs
}

/// A parsed CIDR: the address as written and the prefix length over `bits` (32 or 128).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    /// The address part as written.
    pub addr: IpAddr,
    /// The prefix length.
    pub prefix: u8,
}

impl Cidr {
    fn bits(&self) -> u8 {
        match self.addr {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        }
    }

    fn as_u128(ip: IpAddr) -> u128 {
        match ip {
            IpAddr::V4(v4) => u128::from(u32::from(v4)),
            IpAddr::V6(v6) => u128::from(v6),
        }
    }

    fn mask(&self) -> u128 {
        let bits = u32::from(self.bits());
        let host = bits - u32::from(self.prefix);
        let all = if bits == 128 {
            u128::MAX
        } else {
            (1u128 << bits) - 1
        };
        if host >= 128 {
            0
        } else {
            all & !((1u128 << host) - 1)
        }
    }

    /// The network address (host bits cleared).
    pub fn network(&self) -> IpAddr {
        let n = Self::as_u128(self.addr) & self.mask();
        match self.addr {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::from(u32::try_from(n).unwrap_or(0))),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from(n)),
        }
    }

    /// Go's `IPNet.Contains`: an IPv4-like address is compared as IPv4.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match (self.addr, as_v4(ip)) {
            (IpAddr::V4(_), Some(v4)) => IpAddr::V4(v4),
            (IpAddr::V4(_), None) => return false,
            (IpAddr::V6(_), _) => match ip {
                IpAddr::V4(v4) => IpAddr::V6(v4.to_ipv6_mapped()),
                v6 => v6,
            },
        };
        Self::as_u128(ip) & self.mask() == Self::as_u128(self.addr) & self.mask()
    }

    /// `IPNet.String()`: the network address and the prefix length.
    pub fn canonical(&self) -> String {
        format!("{}/{}", self.network(), self.prefix)
    }
}

/// `netutils.ParseCIDRSloppy`: an address (as [`parse_ip_sloppy`]) and a decimal prefix
/// length that may carry leading zeros. A dotted IPv4 address gives a 32-bit CIDR.
pub fn parse_cidr_sloppy(s: &str) -> Option<Cidr> {
    let (addr, prefix) = s.split_once('/')?;
    if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let digits = prefix.trim_start_matches('0');
    if digits.len() > 3 {
        return None;
    }
    let prefix: u16 = if digits.is_empty() {
        0
    } else {
        digits.parse().ok()?
    };
    let addr = parse_ip_sloppy(addr)?;
    let cidr = Cidr {
        addr,
        prefix: u8::try_from(prefix).ok()?,
    };
    (u16::from(cidr.bits()) >= prefix).then_some(cidr)
}

/// `IsValidCIDRForLegacyField` with strict validation off.
pub fn legacy_cidr_errors(value: &str) -> Vec<String> {
    match parse_cidr_sloppy(value) {
        Some(_) => Vec::new(),
        None => vec![INVALID_CIDR_MSG.to_string()],
    }
}

/// `IsValidCIDR`: a strictly parsed subnet-style CIDR in canonical form.
pub fn strict_cidr_errors(value: &str) -> Vec<String> {
    let Some(cidr) = parse_cidr_sloppy(value) else {
        return vec![INVALID_CIDR_MSG.to_string()];
    };
    let strict = value.split_once('/').and_then(|(addr, prefix)| {
        let ok_prefix = prefix == "0" || !prefix.starts_with('0');
        parse_ip_strict(addr).filter(|_| ok_prefix)
    });
    match strict {
        None => return vec!["must not have leading 0s in IP or prefix length".to_string()],
        Some(IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_some() => {
            return vec!["must not have an IPv4-mapped IPv6 address".to_string()];
        }
        Some(_) if cidr.network() != cidr.addr => {
            return vec!["must not have bits set beyond the prefix length".to_string()];
        }
        Some(_) => {}
    }
    let canonical = cidr.canonical();
    if canonical != value {
        return vec![format!("must be in canonical form ({})", quote(&canonical))];
    }
    Vec::new()
}

/// `netutils.IPFamilyOfCIDRString`: `Some(true)` for IPv4, `Some(false)` for IPv6,
/// `None` when unparseable.
pub fn cidr_is_ipv4(value: &str) -> Option<bool> {
    parse_cidr_sloppy(value).map(|c| is_ipv4_like(c.addr))
}
use k1s_apimachinery::goformat::quote;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sloppy_parsing_accepts_leading_zeros() {
        assert_eq!(
            parse_ip_sloppy("010.001.0.1"),
            Some(IpAddr::from([10, 1, 0, 1]))
        );
        assert!(parse_ip_sloppy("::ffff:010.1.2.3").is_some());
        assert!(parse_ip_sloppy("256.0.0.1").is_none());
        assert!(parse_ip_sloppy("fe80::1%eth0").is_none());
        assert!(legacy_cidr_errors("10.0.0.1/08").is_empty());
        assert_eq!(legacy_cidr_errors("10.0.0.0/33"), vec![INVALID_CIDR_MSG]);
    }

    #[test]
    fn strict_cidrs_follow_upstream_order_of_checks() {
        assert!(strict_cidr_errors("10.96.0.0/12").is_empty());
        assert!(strict_cidr_errors("fd00:10:96::/112").is_empty());
        assert_eq!(
            strict_cidr_errors("10.96.0.1/12"),
            vec!["must not have bits set beyond the prefix length"]
        );
        assert_eq!(
            strict_cidr_errors("010.96.0.0/12"),
            vec!["must not have leading 0s in IP or prefix length"]
        );
        assert_eq!(
            strict_cidr_errors("fd00:0:0::/64"),
            vec!["must be in canonical form (\"fd00::/64\")"]
        );
        assert_eq!(strict_cidr_errors("nope"), vec![INVALID_CIDR_MSG]);
    }

    #[test]
    fn special_addresses() {
        assert_eq!(
            non_special_ip_errors("169.254.1.1", false),
            vec!["may not be in the link-local range (169.254.0.0/16, fe80::/10)"]
        );
        assert_eq!(non_special_ip_errors("127.0.0.1", false).len(), 1);
        assert!(non_special_ip_errors("127.0.0.1", true).is_empty());
        assert_eq!(
            non_special_ip_errors("0.0.0.0", false),
            vec!["may not be unspecified (0.0.0.0)"]
        );
        assert!(non_special_ip_errors("10.1.2.3", false).is_empty());
    }

    #[test]
    fn containment_is_by_family() {
        let Some(net) = parse_cidr_sloppy("10.0.0.0/8") else {
            panic!("parse")
        };
        assert!(net.contains(IpAddr::from([10, 2, 3, 4])));
        assert!(!net.contains(IpAddr::from([11, 0, 0, 0])));
        assert_eq!(net.canonical(), "10.0.0.0/8");
    }
}

//! An incremental sync's `nft` script sent to the kernel as one nf_tables netlink batch,
//! without running `nft`.
//!
//! `nft` 1.0 reads every table, chain, set and object of the ruleset before it adds a rule
//! or a map element (its cache), so with 10 000 Services one small change cost 40–80 ms
//! of process start, chain dump and cache teardown. The kernel needs none of that: a
//! batch of `NEWRULE`/`DELRULE`/`NEWSETELEM`/... messages naming the table, chain and set
//! by name is checked and committed atomically as `nft -f` would.
//!
//! Only the script lines [`rules`](super::rules) writes for a sync are understood (chains,
//! rules of the forms it makes, map and set elements); [`encode`] answers `None` for
//! anything else (the sets and rules of `sessionAffinity: ClientIP`, say) and the caller
//! runs `nft` instead. Full rewrites always go through `nft`.

use std::net::Ipv4Addr;
use std::time::Duration;

use ipnet::Ipv4Net;

use crate::NetError;

// nfnetlink (linux/netfilter/nfnetlink.h, nf_tables.h): message types and attributes.
const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
const NFNL_MSG_BATCH_END: u16 = 0x11;
const NFT_MSG_NEWCHAIN: u16 = 3;
const NFT_MSG_DELCHAIN: u16 = 5;
const NFT_MSG_NEWRULE: u16 = 6;
const NFT_MSG_DELRULE: u16 = 8;
const NFT_MSG_NEWSETELEM: u16 = 12;
const NFT_MSG_DELSETELEM: u16 = 14;
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_CREATE: u16 = 0x400;
const NLM_F_APPEND: u16 = 0x800;
const NLA_F_NESTED: u16 = 0x8000;
const AF_UNSPEC: u8 = 0;
const NFPROTO_IPV4: u8 = 2;

const NFTA_CHAIN_TABLE: u16 = 1;
const NFTA_CHAIN_NAME: u16 = 3;
const NFTA_RULE_TABLE: u16 = 1;
const NFTA_RULE_CHAIN: u16 = 2;
const NFTA_RULE_EXPRESSIONS: u16 = 4;
const NFTA_LIST_ELEM: u16 = 1;
const NFTA_EXPR_NAME: u16 = 1;
const NFTA_EXPR_DATA: u16 = 2;
const NFTA_SET_ELEM_LIST_TABLE: u16 = 1;
const NFTA_SET_ELEM_LIST_SET: u16 = 2;
const NFTA_SET_ELEM_LIST_ELEMENTS: u16 = 3;
const NFTA_SET_ELEM_KEY: u16 = 1;
const NFTA_SET_ELEM_DATA: u16 = 2;
const NFTA_DATA_VALUE: u16 = 1;
const NFTA_DATA_VERDICT: u16 = 2;
const NFTA_VERDICT_CODE: u16 = 1;
const NFTA_VERDICT_CHAIN: u16 = 2;

/// The verdict register and the first two data registers (16 bytes each).
const REG_VERDICT: u32 = 0;
const REG_1: u32 = 1;
const REG_2: u32 = 2;

/// Verdict codes (`NF_DROP`, `NF_ACCEPT`, `NFT_JUMP`, `NFT_GOTO`).
const NF_DROP: i32 = 0;
const NF_ACCEPT: i32 = 1;
const NFT_JUMP: i32 = -3;
const NFT_GOTO: i32 = -4;

/// How long the kernel may take to answer a batch before the sync counts as failed.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// A verdict: accept, drop, or a jump/goto to a chain of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    Code(i32),
    Chain(i32, String),
}

impl Verdict {
    fn parse(words: &[&str]) -> Option<Self> {
        match words {
            ["drop"] => Some(Self::Code(NF_DROP)),
            ["accept"] => Some(Self::Code(NF_ACCEPT)),
            ["jump", chain] => Some(Self::Chain(NFT_JUMP, (*chain).to_owned())),
            ["goto", chain] => Some(Self::Chain(NFT_GOTO, (*chain).to_owned())),
            _ => None,
        }
    }

    /// `NFTA_DATA_VERDICT` with its code and chain.
    fn write(&self, m: &mut Msg) {
        let data = m.begin(NFTA_DATA_VERDICT);
        match self {
            Self::Code(code) => m.be32(NFTA_VERDICT_CODE, *code as u32),
            Self::Chain(code, chain) => {
                m.be32(NFTA_VERDICT_CODE, *code as u32);
                m.string(NFTA_VERDICT_CHAIN, chain);
            }
        }
        m.end(data);
    }
}

/// One netlink message being written: header, `nfgenmsg`, attributes.
struct Msg {
    buf: Vec<u8>,
}

impl Msg {
    fn new(kind: u16, flags: u16, seq: u32, family: u8, res_id: u16) -> Self {
        let mut buf = Vec::with_capacity(256);
        buf.extend_from_slice(&0u32.to_ne_bytes()); // length, set in `finish`
        buf.extend_from_slice(&kind.to_ne_bytes());
        buf.extend_from_slice(&(flags | NLM_F_REQUEST).to_ne_bytes());
        buf.extend_from_slice(&seq.to_ne_bytes());
        buf.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel's
        buf.push(family);
        buf.push(0); // NFNETLINK_V0
        buf.extend_from_slice(&res_id.to_be_bytes());
        Self { buf }
    }

    fn nft(msg: u16, flags: u16, seq: u32) -> Self {
        Self::new(
            (NFNL_SUBSYS_NFTABLES << 8) | msg,
            flags,
            seq,
            NFPROTO_IPV4,
            0,
        )
    }

    fn pad(&mut self) {
        while !self.buf.len().is_multiple_of(4) {
            self.buf.push(0);
        }
    }

    fn attr(&mut self, kind: u16, payload: &[u8]) {
        let len = u16::try_from(4 + payload.len()).unwrap_or(u16::MAX);
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(payload);
        self.pad();
    }

    fn string(&mut self, kind: u16, s: &str) {
        let mut v = Vec::with_capacity(s.len() + 1);
        v.extend_from_slice(s.as_bytes());
        v.push(0);
        self.attr(kind, &v);
    }

    fn be32(&mut self, kind: u16, v: u32) {
        self.attr(kind, &v.to_be_bytes());
    }

    /// Opens a nested attribute; [`Msg::end`] writes its length.
    fn begin(&mut self, kind: u16) -> usize {
        let at = self.buf.len();
        self.buf.extend_from_slice(&0u16.to_ne_bytes());
        self.buf
            .extend_from_slice(&(kind | NLA_F_NESTED).to_ne_bytes());
        at
    }

    fn end(&mut self, at: usize) {
        let len = u16::try_from(self.buf.len() - at).unwrap_or(u16::MAX);
        self.buf[at..at + 2].copy_from_slice(&len.to_ne_bytes());
    }

    /// `NFTA_DATA_VALUE` holding `bytes`, nested in `kind`.
    fn value(&mut self, kind: u16, bytes: &[u8]) {
        let at = self.begin(kind);
        self.attr(NFTA_DATA_VALUE, bytes);
        self.end(at);
    }

    fn finish(mut self, out: &mut Vec<u8>) {
        let len = u32::try_from(self.buf.len()).unwrap_or(u32::MAX);
        self.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        out.extend_from_slice(&self.buf);
    }
}

/// One nf_tables expression of a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Expr {
    /// Loads `len` bytes at `offset` of a header (1 network, 2 transport) into register 1.
    Payload { base: u32, offset: u32, len: u32 },
    /// `meta l4proto` into register 1.
    L4Proto,
    /// Register 1 = register 1 & `mask` (a prefix that does not end on a byte).
    Mask(Vec<u8>),
    /// Compares register 1 with `data`: equal, or not (`neq`).
    Cmp { neq: bool, data: Vec<u8> },
    /// A random number below `modulus` into register 1.
    Numgen { modulus: u32 },
    /// `fib saddr type` into register 1.
    FibSaddrType,
    /// DNAT to an address and port (loaded into registers 1 and 2 first).
    Dnat { ip: Ipv4Addr, port: u16 },
    /// The rule's verdict.
    Verdict(Verdict),
}

impl Expr {
    fn write(&self, m: &mut Msg) {
        let elem = m.begin(NFTA_LIST_ELEM);
        match self {
            Self::Payload { base, offset, len } => {
                m.string(NFTA_EXPR_NAME, "payload");
                let d = m.begin(NFTA_EXPR_DATA);
                m.be32(1, REG_1); // NFTA_PAYLOAD_DREG
                m.be32(2, *base); // NFTA_PAYLOAD_BASE
                m.be32(3, *offset); // NFTA_PAYLOAD_OFFSET
                m.be32(4, *len); // NFTA_PAYLOAD_LEN
                m.end(d);
            }
            Self::L4Proto => {
                m.string(NFTA_EXPR_NAME, "meta");
                let d = m.begin(NFTA_EXPR_DATA);
                m.be32(1, REG_1); // NFTA_META_DREG
                m.be32(2, 16); // NFTA_META_KEY: NFT_META_L4PROTO
                m.end(d);
            }
            Self::Mask(mask) => {
                m.string(NFTA_EXPR_NAME, "bitwise");
                let d = m.begin(NFTA_EXPR_DATA);
                m.be32(1, REG_1); // NFTA_BITWISE_SREG
                m.be32(2, REG_1); // NFTA_BITWISE_DREG
                m.be32(3, mask.len() as u32); // NFTA_BITWISE_LEN
                m.value(4, mask); // NFTA_BITWISE_MASK
                m.value(5, &vec![0; mask.len()]); // NFTA_BITWISE_XOR
                m.end(d);
            }
            Self::Cmp { neq, data } => {
                m.string(NFTA_EXPR_NAME, "cmp");
                let d = m.begin(NFTA_EXPR_DATA);
                m.be32(1, REG_1); // NFTA_CMP_SREG
                m.be32(2, u32::from(*neq)); // NFTA_CMP_OP: NFT_CMP_EQ / NFT_CMP_NEQ
                m.value(3, data); // NFTA_CMP_DATA
                m.end(d);
            }
            Self::Numgen { modulus } => {
                m.string(NFTA_EXPR_NAME, "numgen");
                let d = m.begin(NFTA_EXPR_DATA);
                m.be32(1, REG_1); // NFTA_NG_DREG
                m.be32(2, *modulus); // NFTA_NG_MODULUS
                m.be32(3, 1); // NFTA_NG_TYPE: NFT_NG_RANDOM
                m.be32(4, 0); // NFTA_NG_OFFSET
                m.end(d);
            }
            Self::FibSaddrType => {
                m.string(NFTA_EXPR_NAME, "fib");
                let d = m.begin(NFTA_EXPR_DATA);
                m.be32(1, REG_1); // NFTA_FIB_DREG
                m.be32(2, 3); // NFTA_FIB_RESULT: NFT_FIB_RESULT_ADDRTYPE
                m.be32(3, 1); // NFTA_FIB_FLAGS: NFTA_FIB_F_SADDR
                m.end(d);
            }
            Self::Dnat { ip, port } => {
                // Two immediates and the nat expression, each a list element of its own.
                m.string(NFTA_EXPR_NAME, "immediate");
                let d = m.begin(NFTA_EXPR_DATA);
                m.be32(1, REG_1); // NFTA_IMMEDIATE_DREG
                m.value(2, &ip.octets()); // NFTA_IMMEDIATE_DATA
                m.end(d);
                m.end(elem);
                let elem = m.begin(NFTA_LIST_ELEM);
                m.string(NFTA_EXPR_NAME, "immediate");
                let d = m.begin(NFTA_EXPR_DATA);
                m.be32(1, REG_2);
                m.value(2, &port.to_be_bytes());
                m.end(d);
                m.end(elem);
                let elem = m.begin(NFTA_LIST_ELEM);
                m.string(NFTA_EXPR_NAME, "nat");
                let d = m.begin(NFTA_EXPR_DATA);
                m.be32(1, 1); // NFTA_NAT_TYPE: NFT_NAT_DNAT
                m.be32(2, u32::from(NFPROTO_IPV4)); // NFTA_NAT_FAMILY
                m.be32(3, REG_1); // NFTA_NAT_REG_ADDR_MIN
                m.be32(5, REG_2); // NFTA_NAT_REG_PROTO_MIN
                m.be32(7, 0x2); // NFTA_NAT_FLAGS: NF_NAT_RANGE_PROTO_SPECIFIED
                m.end(d);
                m.end(elem);
                return;
            }
            Self::Verdict(v) => {
                m.string(NFTA_EXPR_NAME, "immediate");
                let d = m.begin(NFTA_EXPR_DATA);
                m.be32(1, REG_VERDICT);
                let data = m.begin(2); // NFTA_IMMEDIATE_DATA
                v.write(m);
                m.end(data);
                m.end(d);
            }
        }
        m.end(elem);
    }
}

/// The protocol number of an nftables protocol keyword.
fn proto_number(word: &str) -> Option<u8> {
    match word {
        "tcp" => Some(6),
        "udp" => Some(17),
        "sctp" => Some(132),
        _ => None,
    }
}

/// `ip saddr|daddr [!=] ADDR[/LEN]`: offset 12 or 16 of the IPv4 header.
fn ip_match(dir: &str, neq: bool, value: &str, out: &mut Vec<Expr>) -> Option<()> {
    let offset = match dir {
        "saddr" => 12,
        "daddr" => 16,
        _ => return None,
    };
    let net: Ipv4Net = if value.contains('/') {
        value.parse().ok()?
    } else {
        Ipv4Net::new(value.parse().ok()?, 32).ok()?
    };
    let len = net.prefix_len();
    if len == 0 {
        return None;
    }
    let bytes = net.network().octets();
    if len.is_multiple_of(8) {
        // As nft: a prefix ending on a byte compares only its bytes.
        let n = usize::from(len / 8);
        out.push(Expr::Payload {
            base: 1,
            offset,
            len: n as u32,
        });
        out.push(Expr::Cmp {
            neq,
            data: bytes[..n].to_vec(),
        });
    } else {
        out.push(Expr::Payload {
            base: 1,
            offset,
            len: 4,
        });
        out.push(Expr::Mask(net.netmask().octets().to_vec()));
        out.push(Expr::Cmp {
            neq,
            data: bytes.to_vec(),
        });
    }
    Some(())
}

/// The expressions of one rule as [`rules`](super::rules) writes them, or `None` for a
/// form this encoder does not know (the caller falls back to `nft`).
fn parse_rule(rule: &str) -> Option<Vec<Expr>> {
    let words: Vec<&str> = rule.split_whitespace().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let rest = &words[i..];
        match rest {
            ["ip", dir @ ("saddr" | "daddr"), "!=", value, ..] => {
                ip_match(dir, true, value, &mut out)?;
                i += 4;
            }
            ["ip", dir @ ("saddr" | "daddr"), value, ..] if !value.starts_with('@') => {
                ip_match(dir, false, value, &mut out)?;
                i += 3;
            }
            [proto @ ("tcp" | "udp" | "sctp"), "dport", port, ..] => {
                let port: u16 = port.parse().ok()?;
                out.push(Expr::L4Proto);
                out.push(Expr::Cmp {
                    neq: false,
                    data: vec![proto_number(proto)?],
                });
                out.push(Expr::Payload {
                    base: 2,
                    offset: 2,
                    len: 2,
                });
                out.push(Expr::Cmp {
                    neq: false,
                    data: port.to_be_bytes().to_vec(),
                });
                i += 3;
            }
            ["meta", "l4proto", proto, ..] => {
                out.push(Expr::L4Proto);
                out.push(Expr::Cmp {
                    neq: false,
                    data: vec![proto_number(proto)?],
                });
                i += 3;
            }
            ["numgen", "random", "mod", n, "==", v, ..] => {
                let modulus: u32 = n.parse().ok()?;
                let v: u32 = v.parse().ok()?;
                out.push(Expr::Numgen { modulus });
                out.push(Expr::Cmp {
                    neq: false,
                    data: v.to_ne_bytes().to_vec(),
                });
                i += 6;
            }
            ["fib", "saddr", "type", "local", ..] => {
                out.push(Expr::FibSaddrType);
                // RTN_LOCAL, in host order as the kernel stores the route type.
                out.push(Expr::Cmp {
                    neq: false,
                    data: 2u32.to_ne_bytes().to_vec(),
                });
                i += 4;
            }
            ["dnat", "to", to] => {
                let (ip, port) = to.split_once(':')?;
                out.push(Expr::Dnat {
                    ip: ip.parse().ok()?,
                    port: port.parse().ok()?,
                });
                i += 3;
            }
            _ => {
                // The verdict ends the rule.
                out.push(Expr::Verdict(Verdict::parse(rest)?));
                break;
            }
        }
    }
    Some(out)
}

/// The bytes of a set key: `ADDR`, `tcp`/`udp`/`sctp` or `PORT` joined by ` . `, each
/// padded to 4 bytes as concatenations are laid out in registers.
fn parse_key(key: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    for part in key.split(" . ") {
        let part = part.trim();
        if let Ok(ip) = part.parse::<Ipv4Addr>() {
            out.extend_from_slice(&ip.octets());
        } else if let Some(p) = proto_number(part) {
            out.extend_from_slice(&[p, 0, 0, 0]);
        } else {
            let port: u16 = part.parse().ok()?;
            out.extend_from_slice(&port.to_be_bytes());
            out.extend_from_slice(&[0, 0]);
        }
    }
    Some(out)
}

/// A batch of nf_tables messages: one transaction.
#[derive(Debug)]
pub(crate) struct Batch {
    bytes: Vec<u8>,
    /// Sequence numbers of the batch-begin and the last message.
    first_seq: u32,
    last_seq: u32,
    /// The script line of each message, for errors.
    lines: Vec<String>,
}

/// The netlink batch doing what `script` (lines from [`rules`](super::rules)) says, or
/// `None` where a line is of a kind not encoded here.
pub(crate) fn encode(script: &str) -> Option<Batch> {
    // Sequence numbers only pair answers with messages on this socket.
    let first_seq = 1u32;
    let mut seq = first_seq;
    let mut bytes = Vec::new();
    let mut lines = Vec::new();
    let mut last_at = 0;
    Msg::new(
        NFNL_MSG_BATCH_BEGIN,
        0,
        seq,
        AF_UNSPEC,
        NFNL_SUBSYS_NFTABLES,
    )
    .finish(&mut bytes);
    for line in script.lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        seq += 1;
        let words: Vec<&str> = line.splitn(6, ' ').collect();
        let msg = match words.as_slice() {
            [
                verb @ ("add" | "delete" | "flush"),
                "chain",
                "ip",
                table,
                name,
            ] => {
                let kind = match *verb {
                    "add" => NFT_MSG_NEWCHAIN,
                    "delete" => NFT_MSG_DELCHAIN,
                    _ => NFT_MSG_DELRULE,
                };
                let flags = if *verb == "add" { NLM_F_CREATE } else { 0 };
                let mut m = Msg::nft(kind, flags, seq);
                if kind == NFT_MSG_DELRULE {
                    // Every rule of the chain: no handle given.
                    m.string(NFTA_RULE_TABLE, table);
                    m.string(NFTA_RULE_CHAIN, name);
                } else {
                    m.string(NFTA_CHAIN_TABLE, table);
                    m.string(NFTA_CHAIN_NAME, name);
                }
                m
            }
            ["add", "rule", "ip", table, chain, rule] => {
                let exprs = parse_rule(rule)?;
                let mut m = Msg::nft(NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND, seq);
                m.string(NFTA_RULE_TABLE, table);
                m.string(NFTA_RULE_CHAIN, chain);
                let list = m.begin(NFTA_RULE_EXPRESSIONS);
                for e in &exprs {
                    e.write(&mut m);
                }
                m.end(list);
                m
            }
            [verb @ ("add" | "delete"), "element", "ip", table, set, elem] => {
                let inner = elem.strip_prefix('{')?.strip_suffix('}')?;
                let (key, verdict) = match inner.split_once(" : ") {
                    Some((k, v)) => (k, Some(v)),
                    None => (inner, None),
                };
                let key = parse_key(key)?;
                let verdict = match verdict {
                    Some(v) => Some(Verdict::parse(&v.split_whitespace().collect::<Vec<_>>())?),
                    None => None,
                };
                let (kind, flags) = if *verb == "add" {
                    (NFT_MSG_NEWSETELEM, NLM_F_CREATE)
                } else {
                    (NFT_MSG_DELSETELEM, 0)
                };
                let mut m = Msg::nft(kind, flags, seq);
                m.string(NFTA_SET_ELEM_LIST_TABLE, table);
                m.string(NFTA_SET_ELEM_LIST_SET, set);
                let list = m.begin(NFTA_SET_ELEM_LIST_ELEMENTS);
                let e = m.begin(NFTA_LIST_ELEM);
                m.value(NFTA_SET_ELEM_KEY, &key);
                if let (Some(v), true) = (verdict, *verb == "add") {
                    let d = m.begin(NFTA_SET_ELEM_DATA);
                    v.write(&mut m);
                    m.end(d);
                }
                m.end(e);
                m.end(list);
                m
            }
            _ => return None,
        };
        last_at = bytes.len();
        msg.finish(&mut bytes);
        lines.push(line.to_owned());
    }
    // Only the last message asks for an acknowledgement: the kernel answers every message
    // that fails anyway, and a large batch's acks could overflow the socket's buffer.
    if last_at > 0 {
        let flags = u16::from_ne_bytes([bytes[last_at + 6], bytes[last_at + 7]]) | NLM_F_ACK;
        bytes[last_at + 6..last_at + 8].copy_from_slice(&flags.to_ne_bytes());
    }
    let last_seq = seq;
    seq += 1;
    Msg::new(NFNL_MSG_BATCH_END, 0, seq, AF_UNSPEC, NFNL_SUBSYS_NFTABLES).finish(&mut bytes);
    Some(Batch {
        bytes,
        first_seq,
        last_seq,
        lines,
    })
}

/// Sends `batch` and waits for the kernel's answer to its last message or the first
/// error (blocking: call it off the async threads). The transaction is all or nothing: the first error is returned.
pub(crate) fn send(batch: &Batch) -> Result<(), NetError> {
    use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_NETFILTER};
    let err = |what: &str, e: std::io::Error| NetError::Kernel(format!("nf_tables {what}: {e}"));
    let mut socket = Socket::new(NETLINK_NETFILTER).map_err(|e| err("socket", e))?;
    socket.bind_auto().map_err(|e| err("bind", e))?;
    socket
        .connect(&SocketAddr::new(0, 0))
        .map_err(|e| err("connect", e))?;
    rustix::net::sockopt::set_socket_timeout(
        &socket,
        rustix::net::sockopt::Timeout::Recv,
        Some(ANSWER_TIMEOUT),
    )
    .map_err(|e| err("timeout", e.into()))?;
    if batch.last_seq == batch.first_seq {
        return Ok(());
    }
    socket.send(&batch.bytes, 0).map_err(|e| err("send", e))?;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = socket
            .recv(&mut &mut buf[..], 0)
            .map_err(|e| err("answer", e))?;
        let mut at = 0;
        while at + 16 <= n {
            let len = u32::from_ne_bytes(buf[at..at + 4].try_into().unwrap_or_default()) as usize;
            let kind = u16::from_ne_bytes(buf[at + 4..at + 6].try_into().unwrap_or_default());
            let seq = u32::from_ne_bytes(buf[at + 8..at + 12].try_into().unwrap_or_default());
            if len < 16 || at + len > n {
                return Err(NetError::Kernel(
                    "nf_tables answer: a truncated message".to_owned(),
                ));
            }
            if kind == NLMSG_ERROR && len >= 20 {
                let code = i32::from_ne_bytes(buf[at + 16..at + 20].try_into().unwrap_or_default());
                if code != 0 {
                    // The batch was aborted: nothing of it is applied.
                    return Err(NetError::Kernel(format!(
                        "nf_tables batch: {}: {}",
                        std::io::Error::from_raw_os_error(-code),
                        seq.checked_sub(batch.first_seq + 1)
                            .and_then(|i| batch.lines.get(i as usize))
                            .map_or("(the transaction)", String::as_str),
                    )));
                }
                if seq == batch.last_seq {
                    return Ok(());
                }
            }
            at += (len + 3) & !3;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_of_the_proxys_forms_are_encoded_and_others_are_left_to_nft() {
        let r = parse_rule(
            "ip daddr 10.43.0.43 tcp dport 80 ip saddr != 10.42.0.0/16 jump mark-for-masquerade",
        )
        .expect("encoded");
        assert_eq!(
            r,
            vec![
                Expr::Payload {
                    base: 1,
                    offset: 16,
                    len: 4
                },
                Expr::Cmp {
                    neq: false,
                    data: vec![10, 43, 0, 43]
                },
                Expr::L4Proto,
                Expr::Cmp {
                    neq: false,
                    data: vec![6]
                },
                Expr::Payload {
                    base: 2,
                    offset: 2,
                    len: 2
                },
                Expr::Cmp {
                    neq: false,
                    data: vec![0, 80]
                },
                Expr::Payload {
                    base: 1,
                    offset: 12,
                    len: 2
                },
                Expr::Cmp {
                    neq: true,
                    data: vec![10, 42]
                },
                Expr::Verdict(Verdict::Chain(NFT_JUMP, "mark-for-masquerade".into())),
            ]
        );
        let r = parse_rule("numgen random mod 3 == 0 meta l4proto udp dnat to 10.42.0.5:53")
            .expect("encoded");
        assert_eq!(r[0], Expr::Numgen { modulus: 3 });
        assert_eq!(
            r[3],
            Expr::Cmp {
                neq: false,
                data: vec![17]
            }
        );
        assert_eq!(
            r[4],
            Expr::Dnat {
                ip: "10.42.0.5".parse().expect("ip"),
                port: 53
            }
        );
        // A prefix not ending on a byte is masked.
        let r = parse_rule("ip saddr 10.32.0.0/12 goto x").expect("encoded");
        assert_eq!(r[1], Expr::Mask(vec![255, 240, 0, 0]));
        assert_eq!(
            parse_rule("drop"),
            Some(vec![Expr::Verdict(Verdict::Code(NF_DROP))])
        );
        // ClientIP affinity's set lookups and updates go through nft.
        assert_eq!(parse_rule("ip saddr @affinity-x goto endpoint-x"), None);
        assert_eq!(parse_rule("update @affinity-x { ip saddr }"), None);
        assert_eq!(parse_rule("masquerade fully-random"), None);
    }

    #[test]
    fn keys_are_laid_out_as_registers_and_unknown_lines_refuse_the_batch() {
        assert_eq!(
            parse_key("10.43.0.20 . tcp . 80"),
            Some(vec![10, 43, 0, 20, 6, 0, 0, 0, 0, 80, 0, 0])
        );
        assert_eq!(
            parse_key("udp . 30080"),
            Some(vec![17, 0, 0, 0, 117, 128, 0, 0])
        );
        assert_eq!(parse_key("bogus"), None);
        let script = "flush chain ip t c\n\
                      add rule ip t c meta l4proto tcp dnat to 10.42.0.5:8080\n\
                      delete element ip t hairpin { 10.42.0.6 . 10.42.0.6 }\n\
                      add element ip t service-ips { 10.43.0.20 . tcp . 80 : goto c }\n";
        let b = encode(script).expect("encoded");
        assert_eq!((b.first_seq, b.last_seq), (1, 5));
        // Begin, four messages, end; each length a multiple of 4.
        let mut at = 0;
        let mut count = 0;
        while at < b.bytes.len() {
            let len = u32::from_ne_bytes(b.bytes[at..at + 4].try_into().expect("len")) as usize;
            assert_eq!(len % 4, 0);
            at += len;
            count += 1;
        }
        assert_eq!((at, count), (b.bytes.len(), 6));
        assert!(encode("add set ip t s { type ipv4_addr ; }\n").is_none());
        assert!(encode("add rule ip t c update @s { ip saddr }\n").is_none());
    }

    /// Services of every form the proxy writes, with their slices, at `step` 0 or 1.
    fn services(
        step: u8,
    ) -> Vec<(
        k8s_openapi::api::core::v1::Service,
        Vec<k8s_openapi::api::discovery::v1::EndpointSlice>,
    )> {
        let svc = |v: serde_json::Value| serde_json::from_value(v).expect("service");
        let slice = |v: serde_json::Value| serde_json::from_value(v).expect("slice");
        let eps = |ready_b: bool| {
            slice(serde_json::json!({
                "metadata": {"namespace": "ns", "name": "x"}, "addressType": "IPv4",
                "ports": [{"name": "http", "port": 8080, "protocol": "TCP"},
                          {"name": "dns", "port": 53, "protocol": "UDP"}],
                "endpoints": [
                    {"addresses": ["10.42.0.5"], "nodeName": "n1"},
                    {"addresses": ["10.42.0.6"], "nodeName": "n2", "conditions": {"ready": ready_b}},
                    {"addresses": ["10.42.0.7"], "nodeName": "n1"},
                ]
            }))
        };
        // Node ports apart per Service: they share one map.
        let ports = |n: u16| {
            serde_json::json!([
                {"name": "http", "port": 80, "protocol": "TCP", "nodePort": 30080 + n},
                {"name": "dns", "port": 53, "protocol": "UDP", "nodePort": 30050 + n}])
        };
        let mut out = vec![
            (
                svc(
                    serde_json::json!({"metadata": {"namespace": "ns", "name": "a"},
                "spec": {"clusterIP": "10.43.7.1", "ports": ports(1)}}),
                ),
                vec![eps(step == 0)],
            ),
            (
                svc(
                    serde_json::json!({"metadata": {"namespace": "ns", "name": "b"},
                "spec": {"type": "NodePort", "clusterIP": "10.43.7.2", "externalIPs": ["192.0.2.9"],
                         "ports": ports(2)}}),
                ),
                vec![eps(step == 1)],
            ),
            (
                svc(
                    serde_json::json!({"metadata": {"namespace": "ns", "name": "c"},
                "spec": {"type": "NodePort", "clusterIP": "10.43.7.3",
                         "externalTrafficPolicy": "Local", "internalTrafficPolicy": "Local",
                         "ports": ports(3)}}),
                ),
                if step == 0 { vec![eps(true)] } else { vec![] },
            ),
        ];
        let d = svc(
            serde_json::json!({"metadata": {"namespace": "ns", "name": "d"},
            "spec": {"clusterIP": "10.43.7.4", "ports": [{"name": "http", "port": 81}]}}),
        );
        if step == 1 {
            out.push((d, vec![eps(false)]));
        }
        out
    }

    fn nft_run(args: &[&str], stdin: &str) -> String {
        use std::io::Write as _;
        let mut child = std::process::Command::new("nft")
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("these tests need root and nft (apt-get install nftables)");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stdin.as_bytes())
            .expect("write");
        let out = child.wait_with_output().expect("nft");
        assert!(
            out.status.success(),
            "nft {args:?}: {}\n{stdin}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Each step's changes applied through `nft` to one table and as a netlink batch to
    /// another leave the two tables the same, rule for rule and element for element.
    #[test]
    fn a_netlink_batch_leaves_the_table_as_nft_would() {
        use super::super::rules::{
            Hairpins, ServiceRules, base_script, diff_script, service_rules,
        };
        let tag = std::process::id();
        let (ta, tb) = (format!("k1s-nlt-a{tag}"), format!("k1s-nlt-b{tag}"));
        struct Drop2(String, String);
        impl Drop for Drop2 {
            fn drop(&mut self) {
                for t in [&self.0, &self.1] {
                    let _ = std::process::Command::new("nft")
                        .args(["delete", "table", "ip", t])
                        .output();
                }
            }
        }
        let _cleanup = Drop2(ta.clone(), tb.clone());
        let cidr = "10.42.0.0/16".parse().ok();
        let rules_of = |step| -> Vec<ServiceRules> {
            services(step)
                .iter()
                .map(|(s, sl)| service_rules(s, &sl.iter().collect::<Vec<_>>(), cidr, Some("n1")))
                .collect()
        };
        let (before, after) = (rules_of(0), rules_of(1));
        let empty = ServiceRules::default();
        let mut scripts = Vec::new();
        for table in [&ta, &tb] {
            let mut h = Hairpins::default();
            let mut full = base_script(table);
            for r in &before {
                diff_script(table, &empty, r, &mut full);
                h.update(table, &empty.endpoints, &r.endpoints, &mut full);
            }
            nft_run(&["-f", "-"], &full);
            let mut change = String::new();
            for (i, new) in after.iter().enumerate() {
                let old = before.get(i).unwrap_or(&empty);
                diff_script(table, old, new, &mut change);
                h.update(table, &old.endpoints, &new.endpoints, &mut change);
            }
            // And back, deleting what the step added.
            let mut back = String::new();
            for (i, old) in after.iter().enumerate() {
                let new = before.get(i).unwrap_or(&empty);
                diff_script(table, old, new, &mut back);
                h.update(table, &old.endpoints, &new.endpoints, &mut back);
            }
            scripts.push((change, back));
        }
        let list = |t: &str| nft_run(&["list", "table", "ip", t], "").replace(t, "T");
        // Between them the two steps use every kind of line and rule the batch encodes.
        let both = format!("{}{}", scripts[0].0, scripts[0].1);
        for what in [
            "flush chain",
            "add chain",
            "delete chain",
            "add element",
            "delete element",
            "dnat",
            "fib",
        ] {
            assert!(both.contains(what), "{what}: {both}");
        }
        for step in 0..2 {
            let (a, b) = if step == 0 {
                (&scripts[0].0, &scripts[1].0)
            } else {
                (&scripts[0].1, &scripts[1].1)
            };
            nft_run(&["-f", "-"], a);
            send(&encode(b).expect("every line encoded")).expect("batch applied");
            assert_eq!(list(&ta), list(&tb), "step {step}:\n{b}");
        }
        // A batch the kernel refuses changes nothing and says why.
        let before = list(&tb);
        // The failing message first: the answer to the last one does not hide it.
        let bad = format!(
            "delete element ip {tb} service-ips {{ 10.99.0.1 . tcp . 1 }}\nadd rule ip {tb} services drop\n"
        );
        let e = send(&encode(&bad).expect("encoded")).expect_err("refused");
        assert!(e.to_string().contains("No such file"), "{e}");
        assert_eq!(list(&tb), before);
    }
}

//! The node's NAT and forwarding rules, in one nftables table of their own (`k1s`),
//! written with the `nftables` crate (its JSON schema, applied by `nft -j -f -`) and
//! replaced whole in one transaction each time: the kernel never sees half a rule set.
//!
//! What the table holds:
//! - outbound masquerade of traffic from the pod CIDR leaving the cluster CIDR (as
//!   flannel's `-s podCIDR ! -d clusterCIDR -j MASQUERADE`);
//! - `hostPort`s as DNAT from the node's local addresses, for traffic arriving
//!   (prerouting) and made on the node itself (output), as the CNI `portmap` plugin does,
//!   localhost included (with `route_localnet` on the bridge and a masquerade of
//!   127.0.0.0/8 so the pod's answer finds its way back);
//! - the masquerade of a pod reaching a host port from the same bridge (hairpin included);
//! - accept rules for pod traffic in the forward hook.

use std::borrow::Cow;
use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr};

use ipnet::Ipv4Net;
use nftables::batch::Batch;
use nftables::expr::{
    Expression, Fib, FibFlag, FibResult, NamedExpression, Payload, PayloadField, Prefix,
};
use nftables::schema::{Chain, NfListObject, Rule, Table};
use nftables::stmt::{JumpTarget, Match, NAT, Operator, Statement};
use nftables::types::{NfChainPolicy, NfChainType, NfFamily, NfHook};

use crate::{HostPort, NetError};

/// Where the rules apply.
#[derive(Debug, Clone)]
pub(crate) struct Scope {
    /// The table's name (`k1s` on a node).
    pub table: String,
    /// The bridge the pods hang off.
    pub bridge: String,
    /// The node's pod CIDR.
    pub pod_cidr: Ipv4Net,
    /// The whole cluster's pod CIDR.
    pub cluster_cidr: Ipv4Net,
}

/// A pod's host ports, with the address they lead to.
#[derive(Debug, Clone)]
pub(crate) struct PodPorts {
    pub ip: Ipv4Addr,
    pub ports: Vec<HostPort>,
}

const FAMILY: NfFamily = NfFamily::IP;
const HOSTPORTS: &str = "hostports";

/// Replaces the table with the rules for `pods`.
pub(crate) async fn apply(scope: &Scope, pods: &[PodPorts]) -> Result<(), NetError> {
    let batch = ruleset(scope, pods);
    nftables::helper::apply_ruleset_async(&batch.to_nftables())
        .await
        .map_err(|e| NetError::Kernel(format!("nftables table {}: {e}", scope.table)))
}

/// Deletes the table, if it is there.
pub(crate) async fn delete(table: &str) -> Result<(), NetError> {
    let mut batch = Batch::new();
    // Adding first makes the delete succeed whether or not the table existed.
    batch.add(NfListObject::Table(table_obj(table)));
    batch.delete(NfListObject::Table(table_obj(table)));
    nftables::helper::apply_ruleset_async(&batch.to_nftables())
        .await
        .map_err(|e| NetError::Kernel(format!("nftables table {table}: {e}")))
}

fn table_obj(name: &str) -> Table<'static> {
    Table {
        family: FAMILY,
        name: Cow::Owned(name.to_owned()),
        ..Default::default()
    }
}

fn ruleset<'a>(scope: &'a Scope, pods: &'a [PodPorts]) -> Batch<'a> {
    let table = scope.table.as_str();
    let mut b = Batch::new();
    // add + delete + add: one transaction that starts from an empty table whether or not
    // one was there.
    b.add(NfListObject::Table(table_obj(table)));
    b.delete(NfListObject::Table(table_obj(table)));
    b.add(NfListObject::Table(table_obj(table)));

    let base = |name: &'static str, kind, hook, prio| {
        NfListObject::Chain(Chain {
            family: FAMILY,
            table: Cow::Borrowed(table),
            name: Cow::Borrowed(name),
            _type: Some(kind),
            hook: Some(hook),
            prio: Some(prio),
            policy: Some(NfChainPolicy::Accept),
            ..Default::default()
        })
    };
    b.add(NfListObject::Chain(Chain {
        family: FAMILY,
        table: Cow::Borrowed(table),
        name: Cow::Borrowed(HOSTPORTS),
        ..Default::default()
    }));
    // dstnat = -100, srcnat = 100, filter = 0.
    b.add(base(
        "prerouting",
        NfChainType::NAT,
        NfHook::Prerouting,
        -100,
    ));
    b.add(base("output", NfChainType::NAT, NfHook::Output, -100));
    b.add(base(
        "postrouting",
        NfChainType::NAT,
        NfHook::Postrouting,
        100,
    ));
    b.add(base("forward", NfChainType::Filter, NfHook::Forward, 0));

    let rule = |chain: &'static str, expr: Vec<Statement<'a>>| {
        NfListObject::Rule(Rule {
            family: FAMILY,
            table: Cow::Borrowed(table),
            chain: Cow::Borrowed(chain),
            expr: Cow::Owned(expr),
            ..Default::default()
        })
    };

    // Host ports: only for packets addressed to one of the node's own addresses.
    for chain in ["prerouting", "output"] {
        b.add(rule(
            chain,
            vec![
                matches(
                    fib_daddr_type(),
                    Expression::String("local".into()),
                    Operator::EQ,
                ),
                Statement::Jump(JumpTarget {
                    target: Cow::Borrowed(HOSTPORTS),
                }),
            ],
        ));
    }
    for pod in pods {
        let mut hairpin_protocols = HashSet::new();
        for hp in &pod.ports {
            let Some(proto) = l4(&hp.protocol) else {
                continue;
            };
            let mut expr = Vec::new();
            match hp.host_ip {
                Some(IpAddr::V4(ip)) if !ip.is_unspecified() => {
                    expr.push(matches(ip_field("daddr"), addr(ip), Operator::EQ));
                }
                // An IPv6 hostIP has no place in this IPv4 table.
                Some(IpAddr::V6(ip)) if !ip.is_unspecified() => continue,
                _ => {}
            }
            expr.push(matches(
                field(proto, "dport"),
                Expression::Number(u32::from(hp.host_port)),
                Operator::EQ,
            ));
            expr.push(Statement::DNAT(Some(NAT {
                addr: Some(addr(pod.ip)),
                family: None,
                port: Some(Expression::Number(u32::from(hp.container_port))),
                flags: None,
            })));
            b.add(rule(HOSTPORTS, expr));
            hairpin_protocols.insert((proto, hp.container_port));
        }
        // A pod reaching a host port on the same bridge (itself included: portmap's
        // hairpin rule): the answer would go straight back over the bridge, unseen by the
        // node's NAT, so the source becomes the gateway and the answer comes through it.
        let mut hairpin: Vec<_> = hairpin_protocols.into_iter().collect();
        hairpin.sort_unstable();
        for (proto, port) in hairpin {
            b.add(rule(
                "postrouting",
                vec![
                    matches(ip_field("saddr"), net(scope.pod_cidr), Operator::EQ),
                    matches(ip_field("daddr"), addr(pod.ip), Operator::EQ),
                    matches(
                        ct("status"),
                        Expression::String("dnat".into()),
                        Operator::IN,
                    ),
                    matches(
                        field(proto, "dport"),
                        Expression::Number(u32::from(port)),
                        Operator::EQ,
                    ),
                    Statement::Masquerade(None),
                ],
            ));
        }
    }

    // A host port reached on localhost: 127.0.0.1 cannot be a source on the bridge.
    b.add(rule(
        "postrouting",
        vec![
            matches(
                ip_field("saddr"),
                prefix(Ipv4Addr::new(127, 0, 0, 0), 8),
                Operator::EQ,
            ),
            matches(
                oifname(),
                Expression::String(scope.bridge.clone().into()),
                Operator::EQ,
            ),
            Statement::Masquerade(None),
        ],
    ));
    // Outbound NAT: pods leaving the cluster network (multicast stays as it is).
    b.add(rule(
        "postrouting",
        vec![
            matches(ip_field("saddr"), net(scope.pod_cidr), Operator::EQ),
            matches(ip_field("daddr"), net(scope.cluster_cidr), Operator::NEQ),
            matches(
                ip_field("daddr"),
                prefix(Ipv4Addr::new(224, 0, 0, 0), 4),
                Operator::NEQ,
            ),
            Statement::Masquerade(None),
        ],
    ));
    // Pod traffic is forwarded even where another table's policy is stricter in its own
    // chain (flannel's FORWARD accept rules).
    for dir in ["saddr", "daddr"] {
        b.add(rule(
            "forward",
            vec![
                matches(ip_field(dir), net(scope.cluster_cidr), Operator::EQ),
                Statement::Accept(None),
            ],
        ));
    }
    b
}

/// The transport-layer header named by a `protocol`, if nftables handles it here.
fn l4(protocol: &str) -> Option<&'static str> {
    match protocol.to_ascii_uppercase().as_str() {
        "TCP" | "" => Some("tcp"),
        "UDP" => Some("udp"),
        "SCTP" => Some("sctp"),
        _ => None,
    }
}

fn matches<'a>(left: Expression<'a>, right: Expression<'a>, op: Operator) -> Statement<'a> {
    Statement::Match(Match { left, right, op })
}

fn field(protocol: &'static str, name: &'static str) -> Expression<'static> {
    Expression::Named(NamedExpression::Payload(Payload::PayloadField(
        PayloadField {
            protocol: Cow::Borrowed(protocol),
            field: Cow::Borrowed(name),
        },
    )))
}

fn ip_field(name: &'static str) -> Expression<'static> {
    field("ip", name)
}

fn fib_daddr_type() -> Expression<'static> {
    Expression::Named(NamedExpression::Fib(Fib {
        result: FibResult::Type,
        flags: HashSet::from([FibFlag::Daddr]),
    }))
}

fn ct(key: &'static str) -> Expression<'static> {
    Expression::Named(NamedExpression::CT(nftables::expr::CT {
        key: Cow::Borrowed(key),
        family: None,
        dir: None,
    }))
}

fn oifname() -> Expression<'static> {
    Expression::Named(NamedExpression::Meta(nftables::expr::Meta {
        key: nftables::expr::MetaKey::Oifname,
    }))
}

fn addr(ip: Ipv4Addr) -> Expression<'static> {
    Expression::String(ip.to_string().into())
}

fn prefix(ip: Ipv4Addr, len: u8) -> Expression<'static> {
    Expression::Named(NamedExpression::Prefix(Prefix {
        addr: Box::new(addr(ip)),
        len: u32::from(len),
    }))
}

fn net(n: Ipv4Net) -> Expression<'static> {
    prefix(n.network(), n.prefix_len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ruleset_starts_from_an_empty_table_and_maps_host_ports() {
        let scope = Scope {
            table: "k1s".into(),
            bridge: "k1s0".into(),
            pod_cidr: "10.42.0.0/24".parse().expect("cidr"),
            cluster_cidr: "10.42.0.0/16".parse().expect("cidr"),
        };
        let pods = [PodPorts {
            ip: Ipv4Addr::new(10, 42, 0, 5),
            ports: vec![HostPort {
                protocol: "TCP".into(),
                host_port: 8080,
                container_port: 80,
                host_ip: None,
            }],
        }];
        let json = serde_json::to_value(ruleset(&scope, &pods).to_nftables()).expect("json");
        let cmds = json["nftables"].as_array().expect("commands");
        assert!(cmds[0]["add"]["table"].is_object());
        assert!(cmds[1]["delete"]["table"].is_object());
        let text = json.to_string();
        assert!(
            text.contains(r#""dnat":{"addr":"10.42.0.5","port":80}"#),
            "{text}"
        );
        assert!(text.contains(r#""right":8080"#), "{text}");
    }
}

//! The request handler: the cluster zone from the index, PTR for our addresses, the
//! rest forwarded.

use std::net::SocketAddr;
use std::sync::Arc;

use hickory_proto::op::{Edns, Header, Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_server::authority::MessageResponseBuilder;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use parking_lot::RwLock;
use tokio::net::{TcpListener, UdpSocket};

use crate::forward::{Forwarded, Forwarder};
use crate::index::{Answer, Index, Zone};

/// Serves queries from the index and the forwarder.
pub(crate) struct Handler {
    index: Arc<RwLock<Index>>,
    zone: Zone,
    forwarder: Option<Arc<Forwarder>>,
    in_addr: Name,
    ip6: Name,
}

impl Handler {
    pub(crate) fn new(
        index: Arc<RwLock<Index>>,
        zone: Zone,
        forwarder: Option<Arc<Forwarder>>,
    ) -> Self {
        let arpa = |s: &str| Name::from_ascii(s).unwrap_or_else(|_| Name::root());
        Self {
            index,
            zone,
            forwarder,
            in_addr: arpa("in-addr.arpa."),
            ip6: arpa("ip6.arpa."),
        }
    }
}

/// What goes into a response.
#[derive(Default)]
struct Reply {
    code: ResponseCode,
    authoritative: bool,
    answers: Vec<Record>,
    soa: Vec<Record>,
    additionals: Vec<Record>,
    /// The index generation the reply was read at, when it came from the index alone
    /// (nothing forwarded): such a reply stays right until the index changes.
    generation: Option<u64>,
}

impl Handler {
    async fn resolve(&self, qname: &Name, qtype: RecordType) -> Reply {
        let local = {
            let index = self.index.read();
            let generation = index.generation();
            match index.lookup(&self.zone, qname, qtype) {
                Some(answer) => Some((answer, index.synced(), index.serial(), generation)),
                None if qtype == RecordType::PTR
                    && (self.in_addr.zone_of(qname) || self.ip6.zone_of(qname)) =>
                {
                    index.ptr(&self.zone, qname).map(|r| {
                        (
                            Answer::Records {
                                answers: vec![r],
                                additionals: Vec::new(),
                            },
                            true,
                            index.serial(),
                            generation,
                        )
                    })
                }
                None => None,
            }
        };
        let Some((answer, synced, serial, generation)) = local else {
            return self.forward(qname, qtype).await;
        };
        match answer {
            Answer::Records {
                mut answers,
                additionals,
            } => {
                // An ExternalName pointing outside the cluster: the forwarder finishes it.
                let mut generation = Some(generation);
                if qtype != RecordType::CNAME
                    && let Some(RData::CNAME(target)) = answers.last().map(Record::data)
                    && !self.zone.name.zone_of(&target.0)
                {
                    generation = None;
                    let target = target.0.clone();
                    if let Reply {
                        code: ResponseCode::NoError,
                        answers: more,
                        ..
                    } = self.forward(&target, qtype).await
                    {
                        answers.extend(more);
                    }
                }
                Reply {
                    code: ResponseCode::NoError,
                    authoritative: true,
                    answers,
                    additionals,
                    soa: Vec::new(),
                    generation,
                }
            }
            Answer::NoData => Reply {
                authoritative: true,
                soa: vec![self.zone.soa(serial)],
                generation: Some(generation),
                ..Reply::default()
            },
            // Before the first lists are in, "no such name" may be wrong: SERVFAIL.
            Answer::NxDomain if !synced => Reply {
                code: ResponseCode::ServFail,
                ..Reply::default()
            },
            Answer::NxDomain => Reply {
                code: ResponseCode::NXDomain,
                authoritative: true,
                soa: vec![self.zone.soa(serial)],
                generation: Some(generation),
                ..Reply::default()
            },
        }
    }

    async fn forward(&self, qname: &Name, qtype: RecordType) -> Reply {
        let Some(forwarder) = &self.forwarder else {
            return Reply {
                code: ResponseCode::ServFail,
                ..Reply::default()
            };
        };
        match forwarder.forward(qname, qtype).await {
            Forwarded::Records(answers) => Reply {
                answers,
                ..Reply::default()
            },
            Forwarded::Negative { code, soa } => Reply {
                code,
                soa: soa.into_iter().map(|s| *s).collect(),
                ..Reply::default()
            },
            Forwarded::Failed => Reply {
                code: ResponseCode::ServFail,
                ..Reply::default()
            },
        }
    }
}

impl Handler {
    /// The index's generation now: cached answers of another generation are stale.
    pub(crate) fn generation(&self) -> u64 {
        self.index.read().generation()
    }

    /// Answers one UDP query given as wire bytes: the response's bytes (truncated to
    /// what the client can take: its EDNS payload size, else 512 bytes) and, when the
    /// answer came from the index alone, the generation it is valid for. `None`: not a
    /// query at all (too short to answer, or itself a response), dropped as hickory does.
    pub(crate) async fn answer_udp(&self, query: &[u8]) -> Option<(Vec<u8>, Option<u64>)> {
        let request = match Message::from_vec(query) {
            Ok(m) => m,
            Err(_) => {
                let id = u16::from_be_bytes([*query.first()?, *query.get(1)?]);
                let refused = Message::error_msg(id, OpCode::Query, ResponseCode::FormErr);
                return refused.to_vec().ok().map(|b| (b, None));
            }
        };
        if request.message_type() != MessageType::Query {
            return None;
        }
        let reply = match (request.op_code(), request.queries()) {
            (OpCode::Query, [query]) => {
                // Names match case-insensitively (the question keeps its case).
                let qname = query.name().to_lowercase();
                self.resolve(&qname, query.query_type()).await
            }
            (OpCode::Query, _) => Reply {
                code: ResponseCode::FormErr,
                ..Reply::default()
            },
            _ => Reply {
                code: ResponseCode::NotImp,
                ..Reply::default()
            },
        };
        let mut header = Header::response_from_request(request.header());
        header.set_recursion_available(true);
        header.set_authoritative(reply.authoritative);
        header.set_response_code(reply.code);
        let mut response = Message::new();
        response.set_header(header);
        response.add_queries(request.queries().iter().cloned());
        response.add_answers(reply.answers);
        response.add_name_servers(reply.soa);
        response.add_additionals(reply.additionals);
        let limit = match request.extensions() {
            Some(edns) => {
                let mut edns_out = Edns::new();
                edns_out.set_max_payload(edns.max_payload().max(512));
                response.set_edns(edns_out);
                usize::from(edns.max_payload().max(512))
            }
            None => 512,
        };
        let mut bytes = response.to_vec().ok()?;
        if bytes.len() > limit {
            bytes = response.truncate().to_vec().ok()?;
        }
        Some((bytes, reply.generation))
    }
}

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let mut builder = MessageResponseBuilder::from_message_request(request);
        if let Some(req_edns) = request.edns() {
            let mut edns = Edns::new();
            edns.set_max_payload(req_edns.max_payload().max(512));
            builder.edns(edns);
        }
        let reply = match (
            request.message_type(),
            request.op_code(),
            request.request_info(),
        ) {
            (MessageType::Query, OpCode::Query, Ok(info)) => {
                let qname: Name = info.query.name().into();
                self.resolve(&qname, info.query.query_type()).await
            }
            (MessageType::Query, OpCode::Query, Err(_)) => Reply {
                code: ResponseCode::FormErr,
                ..Reply::default()
            },
            _ => Reply {
                code: ResponseCode::NotImp,
                ..Reply::default()
            },
        };
        let mut header = Header::response_from_request(request.header());
        header.set_recursion_available(true);
        header.set_authoritative(reply.authoritative);
        header.set_response_code(reply.code);
        let response = builder.build(
            header,
            reply.answers.iter(),
            std::iter::empty(),
            reply.soa.iter(),
            reply.additionals.iter(),
        );
        match response_handle.send_response(response).await {
            Ok(info) => info,
            Err(e) => {
                tracing::debug!(error = %e, "cannot send a DNS response");
                let mut header = Header::new();
                header.set_response_code(ResponseCode::ServFail);
                header.into()
            }
        }
    }
}

/// A UDP socket with SO_REUSEPORT: several on one address spread the queries over
/// as many receive loops (the kernel hashes each client to one of them).
fn reuseport_udp(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    UdpSocket::from_std(socket.into())
}

/// Binds UDP (`sockets` sockets sharing the port) and TCP on one address; port 0 picks
/// a port free for both.
pub(crate) async fn bind_pair(
    addr: SocketAddr,
    sockets: usize,
) -> Result<(Vec<UdpSocket>, TcpListener), crate::Error> {
    let mut last = None;
    for _ in 0..20 {
        let first = reuseport_udp(addr).map_err(|e| crate::Error::Bind(addr, e))?;
        let bound = first
            .local_addr()
            .map_err(|e| crate::Error::Bind(addr, e))?;
        match TcpListener::bind(bound).await {
            Ok(tcp) => {
                let mut udp = vec![first];
                for _ in 1..sockets.max(1) {
                    udp.push(reuseport_udp(bound).map_err(|e| crate::Error::Bind(addr, e))?);
                }
                return Ok((udp, tcp));
            }
            // Only a picked port may be retried: a given one is taken for good.
            Err(e) if addr.port() == 0 && e.kind() == std::io::ErrorKind::AddrInUse => {
                last = Some(e)
            }
            Err(e) => return Err(crate::Error::Bind(addr, e)),
        }
    }
    Err(crate::Error::Bind(
        addr,
        last.unwrap_or_else(|| std::io::Error::other("no free port")),
    ))
}

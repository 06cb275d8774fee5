//! The DNS server against an in-process API server, queried over real UDP and TCP on a
//! loopback port, with a fake upstream DNS server for forwarded names.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, SOA};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use k1s_apiserver::test_util::TestApiServer;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

const WAIT: Duration = Duration::from_secs(15);

fn name(s: &str) -> Name {
    Name::from_ascii(s).expect("name")
}

fn request(qname: &str, qtype: RecordType) -> Vec<u8> {
    let mut msg = Message::new();
    msg.set_id(rand_id())
        .set_message_type(MessageType::Query)
        .set_op_code(OpCode::Query)
        .set_recursion_desired(true)
        .add_query(Query::query(name(qname), qtype));
    msg.to_vec().expect("encode")
}

fn rand_id() -> u16 {
    static NEXT: AtomicUsize = AtomicUsize::new(1);
    (NEXT.fetch_add(1, Ordering::Relaxed) % 65_000) as u16
}

async fn udp(server: SocketAddr, qname: &str, qtype: RecordType) -> Message {
    let sock = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("bind");
    let query = request(qname, qtype);
    sock.send_to(&query, server).await.expect("send");
    let mut buf = vec![0u8; 4096];
    let (n, _) = tokio::time::timeout(Duration::from_secs(10), sock.recv_from(&mut buf))
        .await
        .expect("UDP answer in time")
        .expect("recv");
    let answer = Message::from_vec(&buf[..n]).expect("decode");
    assert_eq!(
        answer.id(),
        u16::from_be_bytes([query[0], query[1]]),
        "answer's ID"
    );
    answer
}

async fn tcp(server: SocketAddr, qname: &str, qtype: RecordType) -> Message {
    let mut stream = TcpStream::connect(server).await.expect("connect");
    let req = request(qname, qtype);
    let len = u16::try_from(req.len()).expect("length");
    stream.write_all(&len.to_be_bytes()).await.expect("write");
    stream.write_all(&req).await.expect("write");
    let mut len = [0u8; 2];
    tokio::time::timeout(Duration::from_secs(10), stream.read_exact(&mut len))
        .await
        .expect("TCP answer in time")
        .expect("read");
    let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut buf).await.expect("read");
    Message::from_vec(&buf).expect("decode")
}

fn ips(rs: &[Record]) -> Vec<IpAddr> {
    let mut out: Vec<IpAddr> = rs
        .iter()
        .filter_map(|r| match r.data() {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            RData::AAAA(a) => Some(IpAddr::V6(a.0)),
            _ => None,
        })
        .collect();
    out.sort();
    out
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("ip")
}

/// The SOA of the authority section, if any.
fn soa(m: &Message) -> Option<&SOA> {
    m.name_servers().iter().find_map(|r| match r.data() {
        RData::SOA(s) => Some(s),
        _ => None,
    })
}

async fn create<K>(client: &kube::Client, ns: &str, v: serde_json::Value) -> K
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    let api: Api<K> = Api::namespaced(client.clone(), ns);
    let obj: K = serde_json::from_value(v).expect("object");
    api.create(&PostParams::default(), &obj)
        .await
        .expect("create")
}

fn cluster_ip(svc: &Service) -> IpAddr {
    svc.spec
        .as_ref()
        .and_then(|s| s.cluster_ip.as_deref())
        .expect("cluster IP")
        .parse()
        .expect("ip")
}

/// A fake upstream: `up.example.` A 192.0.2.7 (TTL 300), `missing.example.` NXDOMAIN
/// with the SOA of `example.`, anything else SERVFAIL; counts the queries it gets.
struct Upstream {
    addr: SocketAddr,
    queries: Arc<AtomicUsize>,
}

async fn upstream() -> Upstream {
    let sock = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("bind");
    let addr = sock.local_addr().expect("addr");
    let queries = Arc::new(AtomicUsize::new(0));
    let count = queries.clone();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        loop {
            let Ok((n, from)) = sock.recv_from(&mut buf).await else {
                return;
            };
            let Ok(req) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            count.fetch_add(1, Ordering::SeqCst);
            let mut resp = Message::new();
            resp.set_id(req.id())
                .set_message_type(MessageType::Response)
                .set_op_code(OpCode::Query)
                .set_recursion_desired(req.recursion_desired())
                .set_recursion_available(true)
                .add_queries(req.queries().to_vec());
            let q = req.queries().first().cloned().unwrap_or_default();
            if *q.name() == name("up.example.") {
                if q.query_type() == RecordType::A {
                    resp.add_answer(Record::from_rdata(
                        q.name().clone(),
                        300,
                        RData::A(A::new(192, 0, 2, 7)),
                    ));
                }
            } else if *q.name() == name("missing.example.") {
                resp.set_response_code(ResponseCode::NXDomain);
                resp.add_name_server(Record::from_rdata(
                    name("example."),
                    60,
                    RData::SOA(SOA::new(
                        name("ns.example."),
                        name("admin.example."),
                        1,
                        60,
                        60,
                        60,
                        60,
                    )),
                ));
            } else {
                resp.set_response_code(ResponseCode::ServFail);
            }
            if let Ok(bytes) = resp.to_vec() {
                let _ = sock.send_to(&bytes, from).await;
            }
        }
    });
    Upstream { addr, queries }
}

async fn start_dns(client: kube::Client, upstreams: Vec<SocketAddr>) -> k1s_dns::Running {
    let mut config = k1s_dns::Config::new(vec![SocketAddr::new(ip("127.0.0.1"), 0)]);
    config.dns_ip = Some(ip("10.43.0.10"));
    config.upstreams = k1s_dns::Upstreams::Servers(upstreams);
    let dns = k1s_dns::start(client, config).await.expect("start");
    assert!(dns.wait_synced(WAIT).await, "watches never synced");
    dns
}

/// Queries until `check` holds over UDP; the time it took.
async fn until(
    server: SocketAddr,
    qname: &str,
    qtype: RecordType,
    check: impl Fn(&Message) -> bool,
) -> Duration {
    let start = Instant::now();
    loop {
        let m = udp(server, qname, qtype).await;
        if check(&m) {
            return start.elapsed();
        }
        assert!(start.elapsed() < WAIT, "{qname} {qtype}: still {m:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn cluster_records_over_udp_and_tcp() {
    let api = TestApiServer::new().await;
    let client = api.client();
    let web: Service = create(
        &client,
        "default",
        json!({
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"},
                 "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}}),
    )
    .await;
    let web_ip = cluster_ip(&web);
    let _: Service = create(
        &client,
        "default",
        json!({
        "metadata": {"name": "db"},
        "spec": {"clusterIP": "None", "selector": {"app": "db"},
                 "ports": [{"name": "pg", "port": 5432}]}}),
    )
    .await;
    let _: Service = create(
        &client,
        "default",
        json!({
        "metadata": {"name": "ext"},
        "spec": {"type": "ExternalName", "externalName": "web.default.svc.cluster.local"}}),
    )
    .await;
    let _: EndpointSlice = create(
        &client,
        "default",
        json!({
        "metadata": {"name": "db-1", "labels": {"kubernetes.io/service-name": "db"}},
        "addressType": "IPv4",
        "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}],
        "endpoints": [
            {"addresses": ["10.42.0.5"], "hostname": "db-0", "conditions": {"ready": true}},
            {"addresses": ["10.42.0.6"], "conditions": {"ready": true}},
            {"addresses": ["10.42.0.7"], "conditions": {"ready": false}}]}),
    )
    .await;
    let dns = start_dns(client.clone(), Vec::new()).await;
    let server = dns.local_addrs()[0];

    // UDP twice: the second answer comes from the answer cache, with the new query's ID.
    for m in [
        udp(server, "web.default.svc.cluster.local.", RecordType::A).await,
        udp(server, "web.default.svc.cluster.local.", RecordType::A).await,
        tcp(server, "web.default.svc.cluster.local.", RecordType::A).await,
    ] {
        assert_eq!(m.response_code(), ResponseCode::NoError);
        assert!(m.authoritative());
        assert_eq!(ips(m.answers()), vec![web_ip]);
        assert_eq!(m.answers()[0].ttl(), 5);
    }
    // Names match whatever their case; the question comes back as asked.
    let m = udp(server, "Web.DEFAULT.svc.cluster.local.", RecordType::A).await;
    assert_eq!(ips(m.answers()), vec![web_ip]);
    assert_eq!(
        m.queries()[0].name(),
        &name("Web.DEFAULT.svc.cluster.local.")
    );
    // The kube-dns Service the server creates, when it does (here: made by hand).
    k1s_dns::kube_dns::ensure(client.clone(), ip("10.43.0.10"))
        .await
        .expect("kube-dns");
    until(
        server,
        "kube-dns.kube-system.svc.cluster.local.",
        RecordType::A,
        |m| ips(m.answers()) == vec![ip("10.43.0.10")],
    )
    .await;

    let m = tcp(server, "db.default.svc.cluster.local.", RecordType::A).await;
    assert_eq!(ips(m.answers()), vec![ip("10.42.0.5"), ip("10.42.0.6")]);

    // An answer over 512 bytes does not fit a UDP reply without EDNS: truncated, with the
    // question kept; TCP gives all of it.
    let many: Vec<serde_json::Value> = (1..=60)
        .map(|i| json!({"addresses": [format!("10.42.1.{i}")], "conditions": {"ready": true}}))
        .collect();
    let _: Service = create(
        &client,
        "default",
        json!({"metadata": {"name": "big"},
               "spec": {"clusterIP": "None", "ports": [{"port": 80}]}}),
    )
    .await;
    let _: EndpointSlice = create(
        &client,
        "default",
        json!({"metadata": {"name": "big-1", "labels": {"kubernetes.io/service-name": "big"}},
               "addressType": "IPv4", "endpoints": many}),
    )
    .await;
    until(
        server,
        "big.default.svc.cluster.local.",
        RecordType::A,
        |m| m.truncated(),
    )
    .await;
    let full = udp(server, "big.default.svc.cluster.local.", RecordType::A).await;
    assert!(full.truncated() && full.answers().is_empty(), "{full:?}");
    assert_eq!(full.queries().len(), 1);
    let m = tcp(server, "big.default.svc.cluster.local.", RecordType::A).await;
    assert_eq!(m.answers().len(), 60);
    assert!(!m.truncated());
    let m = udp(server, "db-0.db.default.svc.cluster.local.", RecordType::A).await;
    assert_eq!(ips(m.answers()), vec![ip("10.42.0.5")]);

    let m = udp(
        server,
        "_http._tcp.web.default.svc.cluster.local.",
        RecordType::SRV,
    )
    .await;
    let srv: Vec<_> = m
        .answers()
        .iter()
        .filter_map(|r| match r.data() {
            RData::SRV(s) => Some((s.port(), s.target().to_string())),
            _ => None,
        })
        .collect();
    assert_eq!(
        srv,
        vec![(80, "web.default.svc.cluster.local.".to_string())]
    );
    assert_eq!(ips(m.additionals()), vec![web_ip]);
    let m = tcp(
        server,
        "_pg._tcp.db.default.svc.cluster.local.",
        RecordType::SRV,
    )
    .await;
    let mut targets: Vec<String> = m
        .answers()
        .iter()
        .filter_map(|r| match r.data() {
            RData::SRV(s) => Some(s.target().to_string()),
            _ => None,
        })
        .collect();
    targets.sort();
    assert_eq!(
        targets,
        vec![
            "10-42-0-6.db.default.svc.cluster.local.".to_string(),
            "db-0.db.default.svc.cluster.local.".to_string()
        ]
    );
    assert_eq!(ips(m.additionals()), vec![ip("10.42.0.5"), ip("10.42.0.6")]);

    let m = udp(server, "ext.default.svc.cluster.local.", RecordType::A).await;
    assert!(
        matches!(m.answers()[0].data(), RData::CNAME(c) if c.0 == name("web.default.svc.cluster.local."))
    );
    assert_eq!(ips(m.answers()), vec![web_ip]);

    let m = udp(
        server,
        "10-42-3-4.default.pod.cluster.local.",
        RecordType::A,
    )
    .await;
    assert_eq!(ips(m.answers()), vec![ip("10.42.3.4")]);

    let IpAddr::V4(v4) = web_ip else {
        panic!("IPv4 cluster IP expected");
    };
    let [a, b, c, d] = v4.octets();
    let m = udp(
        server,
        &format!("{d}.{c}.{b}.{a}.in-addr.arpa."),
        RecordType::PTR,
    )
    .await;
    assert!(
        matches!(m.answers()[0].data(), RData::PTR(p) if p.0 == name("web.default.svc.cluster.local.")),
        "{m:?}"
    );
    let m = tcp(server, "5.0.42.10.in-addr.arpa.", RecordType::PTR).await;
    assert!(
        matches!(m.answers()[0].data(), RData::PTR(p) if p.0 == name("db-0.db.default.svc.cluster.local.")),
        "{m:?}"
    );

    // No such name: NXDOMAIN with the zone's SOA; a name without the type: NODATA + SOA.
    for m in [
        udp(server, "nope.default.svc.cluster.local.", RecordType::A).await,
        tcp(server, "nope.default.svc.cluster.local.", RecordType::A).await,
    ] {
        assert_eq!(m.response_code(), ResponseCode::NXDomain);
        assert!(m.answers().is_empty());
        let s = soa(&m).expect("SOA in the authority section");
        assert_eq!(s.mname(), &name("ns.dns.cluster.local."));
        assert_eq!(m.name_servers()[0].name(), &name("cluster.local."));
    }
    let m = udp(server, "web.default.svc.cluster.local.", RecordType::AAAA).await;
    assert_eq!(m.response_code(), ResponseCode::NoError);
    assert!(m.answers().is_empty());
    assert!(soa(&m).is_some(), "NODATA carries the SOA: {m:?}");
    dns.shutdown().await;
}

#[tokio::test]
async fn changes_are_answered_within_a_second() {
    let api = TestApiServer::new().await;
    let client = api.client();
    let dns = start_dns(client.clone(), Vec::new()).await;
    let server = dns.local_addrs()[0];
    let qname = "late.default.svc.cluster.local.";
    assert_eq!(
        udp(server, qname, RecordType::A).await.response_code(),
        ResponseCode::NXDomain
    );

    let svc: Service = create(
        &client,
        "default",
        json!({
        "metadata": {"name": "late"},
        "spec": {"clusterIP": "None", "ports": [{"name": "http", "port": 80}]}}),
    )
    .await;
    let _ = svc;
    let _: EndpointSlice = create(
        &client,
        "default",
        json!({
        "metadata": {"name": "late-1", "labels": {"kubernetes.io/service-name": "late"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["10.42.0.8"], "conditions": {"ready": true}},
                      {"addresses": ["10.42.0.9"], "conditions": {"ready": true}}]}),
    )
    .await;
    let took = until(server, qname, RecordType::A, |m| {
        ips(m.answers()).len() == 2
    })
    .await;
    assert!(
        took < Duration::from_secs(1),
        "new Service answered after {took:?}"
    );

    // An endpoint turning unready leaves the answer.
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), "default");
    slices
        .patch(
            "late-1",
            &PatchParams::default(),
            &Patch::Merge(json!({"endpoints": [
                {"addresses": ["10.42.0.8"], "conditions": {"ready": true}},
                {"addresses": ["10.42.0.9"], "conditions": {"ready": false}}]})),
        )
        .await
        .expect("patch");
    let took = until(server, qname, RecordType::A, |m| {
        ips(m.answers()) == vec![ip("10.42.0.8")]
    })
    .await;
    assert!(
        took < Duration::from_secs(1),
        "unready endpoint left after {took:?}"
    );

    let services: Api<Service> = Api::namespaced(client.clone(), "default");
    services
        .delete("late", &DeleteParams::default())
        .await
        .expect("delete");
    let took = until(server, qname, RecordType::A, |m| {
        m.response_code() == ResponseCode::NXDomain
    })
    .await;
    assert!(
        took < Duration::from_secs(1),
        "deleted Service answered for {took:?}"
    );
    dns.shutdown().await;
}

#[tokio::test]
async fn other_names_are_forwarded_with_a_cache() {
    let api = TestApiServer::new().await;
    let client = api.client();
    let up = upstream().await;
    let _: Service = create(
        &client,
        "default",
        json!({
        "metadata": {"name": "outside"},
        "spec": {"type": "ExternalName", "externalName": "up.example"}}),
    )
    .await;
    let dns = start_dns(client.clone(), vec![up.addr]).await;
    let server = dns.local_addrs()[0];

    let m = udp(server, "up.example.", RecordType::A).await;
    assert_eq!(m.response_code(), ResponseCode::NoError);
    assert!(!m.authoritative());
    assert_eq!(ips(m.answers()), vec![ip("192.0.2.7")]);
    let m = tcp(server, "up.example.", RecordType::A).await;
    assert_eq!(ips(m.answers()), vec![ip("192.0.2.7")]);
    assert!(m.answers()[0].ttl() <= 300);
    assert_eq!(
        up.queries.load(Ordering::SeqCst),
        1,
        "the second answer came from the cache"
    );

    let m = udp(server, "missing.example.", RecordType::A).await;
    assert_eq!(m.response_code(), ResponseCode::NXDomain);
    assert_eq!(
        soa(&m).map(|s| s.mname().clone()),
        Some(name("ns.example."))
    );

    // An ExternalName Service outside the cluster: the CNAME, then the target's address.
    let m = udp(server, "outside.default.svc.cluster.local.", RecordType::A).await;
    assert!(
        matches!(m.answers()[0].data(), RData::CNAME(c) if c.0 == name("up.example.")),
        "{m:?}"
    );
    assert_eq!(ips(m.answers()), vec![ip("192.0.2.7")]);

    let m = udp(server, "broken.example.", RecordType::A).await;
    assert_eq!(m.response_code(), ResponseCode::ServFail);
    dns.shutdown().await;

    // No upstream answering at all: SERVFAIL.
    let dead = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("bind");
    let dead_addr = dead.local_addr().expect("addr");
    drop(dead);
    let dns = start_dns(client, vec![dead_addr]).await;
    let m = udp(dns.local_addrs()[0], "up.example.", RecordType::A).await;
    assert_eq!(m.response_code(), ResponseCode::ServFail);
    dns.shutdown().await;
}

#[tokio::test]
async fn tcp_listener_shares_the_udp_port() {
    let api = TestApiServer::new().await;
    let dns = start_dns(api.client(), Vec::new()).await;
    let addr = dns.local_addrs()[0];
    let listener = TcpListener::bind(addr).await;
    assert!(
        listener.is_err(),
        "TCP {addr} should be taken by the DNS server"
    );
    dns.shutdown().await;
}

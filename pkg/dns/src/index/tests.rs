//! Unit tests of the records: an index fed with objects, queried directly.

use super::*;
use serde_json::json;

fn zone() -> Zone {
    Zone::new("cluster.local", 5, Some("10.43.0.10".parse().expect("ip"))).expect("zone")
}

fn name(s: &str) -> Name {
    Name::from_ascii(s).expect("name")
}

fn svc(v: serde_json::Value) -> Service {
    serde_json::from_value(v).expect("service")
}

fn slice(v: serde_json::Value) -> EndpointSlice {
    serde_json::from_value(v).expect("slice")
}

/// A cluster: a ClusterIP Service `web` (ports http/80, metrics/9090 UDP), a headless
/// `db` with a ready endpoint with hostname db-0, one without, one not ready, an
/// ExternalName `ext`, a headless `empty` without endpoints.
fn index() -> Index {
    let mut ix = Index::new();
    ix.replace_services(vec![
        svc(json!({"metadata": {"name": "web", "namespace": "default"},
            "spec": {"clusterIP": "10.43.0.20", "clusterIPs": ["10.43.0.20"],
                     "ports": [{"name": "http", "port": 80, "protocol": "TCP"},
                               {"name": "metrics", "port": 9090, "protocol": "UDP"}]}})),
        svc(json!({"metadata": {"name": "db", "namespace": "data"},
            "spec": {"clusterIP": "None", "ports": [{"name": "pg", "port": 5432}]}})),
        svc(json!({"metadata": {"name": "ext", "namespace": "default"},
            "spec": {"type": "ExternalName", "externalName": "example.com"}})),
        svc(
            json!({"metadata": {"name": "alias", "namespace": "default"},
            "spec": {"type": "ExternalName", "externalName": "web.default.svc.cluster.local"}}),
        ),
        svc(json!({"metadata": {"name": "empty", "namespace": "data"},
            "spec": {"clusterIP": "None"}})),
    ]);
    ix.replace_slices(vec![
        slice(json!({"metadata": {"name": "db-abc", "namespace": "data",
            "labels": {"kubernetes.io/service-name": "db"}},
        "addressType": "IPv4",
        "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}],
        "endpoints": [
            {"addresses": ["10.42.0.5"], "hostname": "db-0", "conditions": {"ready": true}},
            {"addresses": ["10.42.0.6"], "conditions": {"ready": true}},
            {"addresses": ["10.42.0.7"], "hostname": "db-2", "conditions": {"ready": false}},
        ]})),
        slice(
            json!({"metadata": {"name": "web-xyz", "namespace": "default",
                "labels": {"kubernetes.io/service-name": "web"}},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            "endpoints": [{"addresses": ["10.42.1.9"], "conditions": {"ready": true}}]}),
        ),
    ]);
    ix
}

fn records(a: Option<Answer>) -> (Vec<Record>, Vec<Record>) {
    match a {
        Some(Answer::Records {
            answers,
            additionals,
        }) => (answers, additionals),
        other => panic!("expected records, got {other:?}"),
    }
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

#[test]
fn cluster_ip_service_answers_its_cluster_ip_with_the_zone_ttl() {
    let ix = index();
    let q = name("web.default.svc.cluster.local.");
    let (ans, _) = records(ix.lookup(&zone(), &q, RecordType::A));
    assert_eq!(ips(&ans), vec![ip("10.43.0.20")]);
    assert_eq!(ans[0].name(), &q);
    assert_eq!(ans[0].ttl(), 5);
    // Case does not matter.
    let (ans, _) = records(ix.lookup(
        &zone(),
        &name("WEB.Default.SVC.cluster.local."),
        RecordType::A,
    ));
    assert_eq!(ips(&ans), vec![ip("10.43.0.20")]);
}

#[test]
fn existing_name_of_another_type_is_nodata_and_missing_name_nxdomain() {
    let ix = index();
    let z = zone();
    assert_eq!(
        ix.lookup(
            &z,
            &name("web.default.svc.cluster.local."),
            RecordType::AAAA
        ),
        Some(Answer::NoData)
    );
    assert_eq!(
        ix.lookup(&z, &name("web.default.svc.cluster.local."), RecordType::TXT),
        Some(Answer::NoData)
    );
    for missing in [
        "nope.default.svc.cluster.local.",
        "web.other.svc.cluster.local.",
        "a.b.c.d.e.f.svc.cluster.local.",
        "web.default.svc.cluster.local.default.svc.cluster.local.",
        "foo.cluster.local.",
        "nope.svc.cluster.local.",
    ] {
        assert_eq!(
            ix.lookup(&z, &name(missing), RecordType::A),
            Some(Answer::NxDomain),
            "{missing}"
        );
    }
    // Nodes of the tree and namespaces with Services exist without records.
    for empty in [
        "svc.cluster.local.",
        "default.svc.cluster.local.",
        "pod.cluster.local.",
    ] {
        assert_eq!(
            ix.lookup(&z, &name(empty), RecordType::A),
            Some(Answer::NoData),
            "{empty}"
        );
    }
    // Outside the zone: not ours.
    assert_eq!(ix.lookup(&z, &name("example.com."), RecordType::A), None);
}

#[test]
fn headless_service_answers_ready_endpoints_and_nxdomain_without_any() {
    let ix = index();
    let z = zone();
    let (ans, _) = records(ix.lookup(&z, &name("db.data.svc.cluster.local."), RecordType::A));
    assert_eq!(ips(&ans), vec![ip("10.42.0.5"), ip("10.42.0.6")]);
    assert_eq!(
        ix.lookup(&z, &name("empty.data.svc.cluster.local."), RecordType::A),
        Some(Answer::NxDomain)
    );
}

#[test]
fn publish_not_ready_addresses_answers_unready_endpoints_too() {
    let mut ix = index();
    ix.apply_service(svc(json!({"metadata": {"name": "db", "namespace": "data"},
        "spec": {"clusterIP": "None", "publishNotReadyAddresses": true}})));
    let (ans, _) = records(ix.lookup(&zone(), &name("db.data.svc.cluster.local."), RecordType::A));
    assert_eq!(
        ips(&ans),
        vec![ip("10.42.0.5"), ip("10.42.0.6"), ip("10.42.0.7")]
    );
}

#[test]
fn endpoint_hostnames_and_dashed_addresses_answer() {
    let ix = index();
    let z = zone();
    let (ans, _) = records(ix.lookup(&z, &name("db-0.db.data.svc.cluster.local."), RecordType::A));
    assert_eq!(ips(&ans), vec![ip("10.42.0.5")]);
    let (ans, _) = records(ix.lookup(
        &z,
        &name("10-42-0-6.db.data.svc.cluster.local."),
        RecordType::A,
    ));
    assert_eq!(ips(&ans), vec![ip("10.42.0.6")]);
    // Not ready: absent.
    assert_eq!(
        ix.lookup(&z, &name("db-2.db.data.svc.cluster.local."), RecordType::A),
        Some(Answer::NxDomain)
    );
    // Endpoints of a ClusterIP Service too, as CoreDNS answers them.
    let (ans, _) = records(ix.lookup(
        &z,
        &name("10-42-1-9.web.default.svc.cluster.local."),
        RecordType::A,
    ));
    assert_eq!(ips(&ans), vec![ip("10.42.1.9")]);
}

fn srv(rs: &[Record]) -> Vec<(u16, u16, String)> {
    let mut out: Vec<_> = rs
        .iter()
        .filter_map(|r| match r.data() {
            RData::SRV(s) => Some((s.weight(), s.port(), s.target().to_string())),
            _ => None,
        })
        .collect();
    out.sort();
    out
}

#[test]
fn srv_for_named_ports_points_at_the_service_or_each_endpoint() {
    let ix = index();
    let z = zone();
    let (ans, add) = records(ix.lookup(
        &z,
        &name("_http._tcp.web.default.svc.cluster.local."),
        RecordType::SRV,
    ));
    assert_eq!(
        srv(&ans),
        vec![(100, 80, "web.default.svc.cluster.local.".into())]
    );
    assert_eq!(ips(&add), vec![ip("10.43.0.20")]);
    // Protocol must match.
    assert_eq!(
        ix.lookup(
            &z,
            &name("_http._udp.web.default.svc.cluster.local."),
            RecordType::SRV
        ),
        Some(Answer::NxDomain)
    );
    let (ans, _) = records(ix.lookup(
        &z,
        &name("_metrics._udp.web.default.svc.cluster.local."),
        RecordType::SRV,
    ));
    assert_eq!(
        srv(&ans),
        vec![(100, 9090, "web.default.svc.cluster.local.".into())]
    );
    // The bare name: every port.
    let (ans, _) = records(ix.lookup(&z, &name("web.default.svc.cluster.local."), RecordType::SRV));
    assert_eq!(srv(&ans).len(), 2);
    // Headless: one target per endpoint, glue for each.
    let (ans, add) = records(ix.lookup(
        &z,
        &name("_pg._tcp.db.data.svc.cluster.local."),
        RecordType::SRV,
    ));
    assert_eq!(
        srv(&ans),
        vec![
            (50, 5432, "10-42-0-6.db.data.svc.cluster.local.".into()),
            (50, 5432, "db-0.db.data.svc.cluster.local.".into()),
        ]
    );
    assert_eq!(ips(&add), vec![ip("10.42.0.5"), ip("10.42.0.6")]);
}

#[test]
fn external_name_is_a_cname_and_an_in_zone_target_is_followed() {
    let ix = index();
    let z = zone();
    let (ans, _) = records(ix.lookup(&z, &name("ext.default.svc.cluster.local."), RecordType::A));
    assert_eq!(ans.len(), 1);
    assert_eq!(ans[0].data(), &RData::CNAME(CNAME(name("example.com."))));
    let (ans, _) = records(ix.lookup(
        &z,
        &name("ext.default.svc.cluster.local."),
        RecordType::CNAME,
    ));
    assert_eq!(ans.len(), 1);
    let (ans, _) = records(ix.lookup(&z, &name("alias.default.svc.cluster.local."), RecordType::A));
    assert_eq!(
        ans[0].data(),
        &RData::CNAME(CNAME(name("web.default.svc.cluster.local.")))
    );
    assert_eq!(ips(&ans), vec![ip("10.43.0.20")]);
}

#[test]
fn pod_names_answer_the_address_they_spell() {
    let ix = index();
    let z = zone();
    let (ans, _) = records(ix.lookup(
        &z,
        &name("10-42-0-99.default.pod.cluster.local."),
        RecordType::A,
    ));
    assert_eq!(ips(&ans), vec![ip("10.42.0.99")]);
    let (ans, _) = records(ix.lookup(
        &z,
        &name("fd00--5.default.pod.cluster.local."),
        RecordType::AAAA,
    ));
    assert_eq!(ips(&ans), vec![ip("fd00::5")]);
    assert_eq!(
        ix.lookup(
            &z,
            &name("10-42-0-99.default.pod.cluster.local."),
            RecordType::AAAA
        ),
        Some(Answer::NoData)
    );
    assert_eq!(
        ix.lookup(
            &z,
            &name("not-an-ip.default.pod.cluster.local."),
            RecordType::A
        ),
        Some(Answer::NxDomain)
    );
}

#[test]
fn ptr_names_services_first_then_endpoints() {
    let ix = index();
    let z = zone();
    assert_eq!(
        ix.reverse(&z, ip("10.43.0.20")),
        Some(name("web.default.svc.cluster.local."))
    );
    assert_eq!(
        ix.reverse(&z, ip("10.42.0.5")),
        Some(name("db-0.db.data.svc.cluster.local."))
    );
    assert_eq!(
        ix.reverse(&z, ip("10.42.0.6")),
        Some(name("10-42-0-6.db.data.svc.cluster.local."))
    );
    assert_eq!(ix.reverse(&z, ip("10.9.9.9")), None);
    let rec = ix.ptr(&z, &name("20.0.43.10.in-addr.arpa.")).expect("ptr");
    assert_eq!(
        rec.data(),
        &RData::PTR(PTR(name("web.default.svc.cluster.local.")))
    );
    assert!(ix.ptr(&z, &name("0.43.10.in-addr.arpa.")).is_none());
}

#[test]
fn changes_and_deletions_update_every_index() {
    let mut ix = index();
    let z = zone();
    let web = svc(json!({"metadata": {"name": "web", "namespace": "default"},
        "spec": {"clusterIP": "10.43.0.21", "ports": [{"name": "http", "port": 80}]}}));
    ix.apply_service(web.clone());
    let (ans, _) = records(ix.lookup(&z, &name("web.default.svc.cluster.local."), RecordType::A));
    assert_eq!(ips(&ans), vec![ip("10.43.0.21")]);
    assert_eq!(ix.reverse(&z, ip("10.43.0.20")), None);
    ix.delete_service(&web);
    assert_eq!(
        ix.lookup(&z, &name("web.default.svc.cluster.local."), RecordType::A),
        Some(Answer::NxDomain)
    );
    assert_eq!(ix.reverse(&z, ip("10.43.0.21")), None);
    // An endpoint turning unready leaves the headless answer.
    ix.apply_slice(slice(json!({"metadata": {"name": "db-abc", "namespace": "data",
            "labels": {"kubernetes.io/service-name": "db"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["10.42.0.5"], "hostname": "db-0", "conditions": {"ready": false}},
                      {"addresses": ["10.42.0.6"], "conditions": {"ready": true}}]})));
    let (ans, _) = records(ix.lookup(&z, &name("db.data.svc.cluster.local."), RecordType::A));
    assert_eq!(ips(&ans), vec![ip("10.42.0.6")]);
    ix.delete_slice(&slice(
        json!({"metadata": {"name": "db-abc", "namespace": "data"},
        "addressType": "IPv4", "endpoints": []}),
    ));
    assert_eq!(
        ix.lookup(&z, &name("db.data.svc.cluster.local."), RecordType::A),
        Some(Answer::NxDomain)
    );
    assert_eq!(ix.reverse(&z, ip("10.42.0.6")), None);
}

#[test]
fn apex_answers_soa_ns_and_the_version() {
    let ix = index();
    let z = zone();
    let (ans, _) = records(ix.lookup(&z, &name("cluster.local."), RecordType::SOA));
    let RData::SOA(soa) = ans[0].data() else {
        panic!("not an SOA: {ans:?}");
    };
    assert_eq!(soa.mname(), &name("ns.dns.cluster.local."));
    assert_eq!(soa.rname(), &name("hostmaster.cluster.local."));
    assert_eq!(soa.minimum(), 5);
    let (ans, add) = records(ix.lookup(&z, &name("cluster.local."), RecordType::NS));
    assert_eq!(ans.len(), 1);
    assert_eq!(ips(&add), vec![ip("10.43.0.10")]);
    let (ans, _) = records(ix.lookup(&z, &name("dns-version.cluster.local."), RecordType::TXT));
    assert_eq!(ans.len(), 1);
}

#[test]
fn not_synced_until_both_lists_are_in() {
    let mut ix = Index::new();
    assert!(!ix.synced());
    ix.replace_services(Vec::new());
    assert!(!ix.synced());
    ix.replace_slices(Vec::new());
    assert!(ix.synced());
}

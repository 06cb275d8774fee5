//! Issue 11, cluster DNS, against a real `k1s server`: objects made with kubectl (a
//! Deployment behind a ClusterIP Service and a StatefulSet behind a headless one, on a
//! simulated node; an ExternalName Service; a hand-made EndpointSlice), every record type
//! checked with `dig` over UDP and TCP. Each server serves DNS on a loopback port of its
//! own (`--dns-listen`), not 10.43.0.10:53, since tests run in parallel.

use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::process::Command;
use std::time::{Duration, Instant};

use k1s_e2e::{K1s, Kubectl, eventually, newest_kubectl};

const WAIT: Duration = Duration::from_secs(60);

/// A loopback port free for both UDP and TCP.
fn free_dns_port() -> u16 {
    for _ in 0..50 {
        let Ok(udp) = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)) else {
            continue;
        };
        let Ok(port) = udp.local_addr().map(|a| a.port()) else {
            continue;
        };
        if TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port for DNS")
}

/// `dig` against the test's server; fails the test when dig is missing.
struct Dig {
    port: u16,
}

impl Dig {
    fn run(&self, args: &[&str]) -> String {
        let port = self.port.to_string();
        let out = Command::new("dig")
            .args(["@127.0.0.1", "-p", &port, "+time=2", "+tries=1"])
            .args(args)
            .output()
            .unwrap_or_else(|e| {
                panic!("cannot run dig ({e}): install it (Debian: apt-get install dnsutils)")
            });
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `dig +short`: the answer's data, sorted.
    fn short(&self, args: &[&str]) -> Vec<String> {
        let mut a = vec!["+short"];
        a.extend_from_slice(args);
        let mut out: Vec<String> = self
            .run(&a)
            .lines()
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty() && !l.starts_with(';'))
            .collect();
        out.sort();
        out
    }

    /// The status word of the header (`NOERROR`, `NXDOMAIN`, …).
    fn status(&self, args: &[&str]) -> String {
        let text = self.run(args);
        text.split("status: ")
            .nth(1)
            .and_then(|s| s.split(',').next())
            .unwrap_or("")
            .to_string()
    }
}

fn get(k1s: &K1s, k: &Kubectl, ns: &str, args: &[&str]) -> String {
    let out = k1s.kubectl_in(k, ns, args);
    if out.code == 0 {
        out.stdout.trim().to_string()
    } else {
        String::new()
    }
}

fn words(s: &str) -> Vec<String> {
    let mut w: Vec<String> = s.split_whitespace().map(str::to_string).collect();
    w.sort();
    w
}

const NS: &str = "dns-e2e";

const OBJECTS: &str = r#"
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: 8080, protocol: TCP}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1.25
---
apiVersion: v1
kind: Service
metadata:
  name: db
spec:
  clusterIP: None
  selector: {app: db}
  ports:
  - {name: pg, port: 5432, protocol: TCP}
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: db
spec:
  serviceName: db
  replicas: 2
  selector:
    matchLabels: {app: db}
  template:
    metadata:
      labels: {app: db}
    spec:
      containers:
      - name: db
        image: postgres:16
---
apiVersion: v1
kind: Service
metadata:
  name: alias
spec:
  type: ExternalName
  externalName: web.dns-e2e.svc.cluster.local
---
apiVersion: v1
kind: Service
metadata:
  name: manual
spec:
  clusterIP: None
  ports:
  - {name: dns, port: 53, protocol: UDP}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: manual-1
  labels:
    kubernetes.io/service-name: manual
addressType: IPv4
ports:
- {name: dns, port: 53, protocol: UDP}
endpoints:
- addresses: ["192.0.2.10"]
  hostname: one
  conditions: {ready: true}
- addresses: ["192.0.2.11"]
  conditions: {ready: false}
"#;

#[test]
fn cluster_dns_answers_every_record_type() {
    let port = free_dns_port();
    let listen = format!("127.0.0.1:{port}");
    let k1s = K1s::start_with(&["--simulate-nodes", "1", "--dns-listen", &listen]);
    let k = newest_kubectl();
    let dig = Dig { port };

    // The seed tutorial's check: the kube-dns Service answers at its ClusterIP.
    eventually(WAIT, "kube-dns.kube-system answers 10.43.0.10", || {
        (dig.short(&["kube-dns.kube-system.svc.cluster.local"]) == ["10.43.0.10"]).then_some(())
    });
    let svc = get(
        &k1s,
        &k,
        "kube-system",
        &[
            "get",
            "svc",
            "kube-dns",
            "-o",
            "jsonpath={.spec.clusterIP} {.metadata.labels.k8s-app} {.spec.ports[*].name}",
        ],
    );
    assert_eq!(svc, "10.43.0.10 kube-dns dns dns-tcp");

    k1s.kubectl(&k, &["create", "namespace", NS]).ok();
    k1s.kubectl_with(&k, &["apply", "-n", NS, "-f", "-"], Some(OBJECTS), &[])
        .ok();
    let web_ip = eventually(WAIT, "web's cluster IP", || {
        Some(get(
            &k1s,
            &k,
            NS,
            &["get", "svc", "web", "-o", "jsonpath={.spec.clusterIP}"],
        ))
        .filter(|s| !s.is_empty())
    });
    let web_pods = eventually(WAIT, "two ready web pods in the slice", || {
        let ips = words(&get(
            &k1s,
            &k,
            NS,
            &[
                "get",
                "endpointslices",
                "-l",
                "kubernetes.io/service-name=web",
                "-o",
                "jsonpath={.items[*].endpoints[?(@.conditions.ready==true)].addresses[*]}",
            ],
        ));
        (ips.len() == 2).then_some(ips)
    });
    let db0 = eventually(WAIT, "db-0 has an IP", || {
        Some(get(
            &k1s,
            &k,
            NS,
            &["get", "pod", "db-0", "-o", "jsonpath={.status.podIP}"],
        ))
        .filter(|s| !s.is_empty())
    });

    // A: a ClusterIP Service, over UDP and TCP.
    let web = format!("web.{NS}.svc.cluster.local");
    assert_eq!(dig.short(&[&web]), std::slice::from_ref(&web_ip));
    assert_eq!(dig.short(&["+tcp", &web]), std::slice::from_ref(&web_ip));
    // Endpoints of a ClusterIP Service by their dashed address.
    let first = &web_pods[0];
    assert_eq!(
        dig.short(&[&format!(
            "{}.web.{NS}.svc.cluster.local",
            first.replace('.', "-")
        )]),
        std::slice::from_ref(first)
    );

    // Headless: every ready pod; StatefulSet pods by hostname.
    eventually(WAIT, "db answers both pods", || {
        (dig.short(&[&format!("db.{NS}.svc.cluster.local")]).len() == 2).then_some(())
    });
    eventually(WAIT, "db-0.db answers db-0's IP", || {
        (dig.short(&[&format!("db-0.db.{NS}.svc.cluster.local")]) == [db0.clone()]).then_some(())
    });
    assert_eq!(
        dig.short(&[&format!("manual.{NS}.svc.cluster.local")]),
        ["192.0.2.10"],
        "the unready endpoint is left out"
    );
    assert_eq!(
        dig.short(&["+tcp", &format!("one.manual.{NS}.svc.cluster.local")]),
        ["192.0.2.10"]
    );

    // SRV for named ports.
    assert_eq!(
        dig.short(&["SRV", &format!("_http._tcp.web.{NS}.svc.cluster.local")]),
        [format!("0 100 80 web.{NS}.svc.cluster.local.")]
    );
    assert_eq!(
        dig.short(&["SRV", &format!("_dns._udp.manual.{NS}.svc.cluster.local")]),
        [format!("0 100 53 one.manual.{NS}.svc.cluster.local.")]
    );
    let srv = dig.short(&["SRV", &format!("_pg._tcp.db.{NS}.svc.cluster.local")]);
    assert_eq!(srv.len(), 2, "{srv:?}");
    assert!(
        srv.contains(&format!("0 50 5432 db-0.db.{NS}.svc.cluster.local.")),
        "{srv:?}"
    );

    // CNAME for ExternalName (followed inside the zone).
    assert_eq!(
        dig.short(&[&format!("alias.{NS}.svc.cluster.local")]),
        words(&format!("{web_ip} web.{NS}.svc.cluster.local."))
    );

    // Pod records: the address the name spells.
    assert_eq!(
        dig.short(&[&format!("10-42-7-9.{NS}.pod.cluster.local")]),
        ["10.42.7.9"]
    );

    // PTR for the Service IP and for an endpoint.
    assert_eq!(
        dig.short(&["-x", &web_ip]),
        [format!("web.{NS}.svc.cluster.local.")]
    );
    assert_eq!(
        dig.short(&["-x", &db0]),
        [format!("db-0.db.{NS}.svc.cluster.local.")]
    );

    // NXDOMAIN with the zone's SOA; NODATA (NOERROR, no answer, SOA) for another type.
    let nx = dig.run(&[&format!("nope.{NS}.svc.cluster.local")]);
    assert!(nx.contains("status: NXDOMAIN"), "{nx}");
    assert!(nx.contains("flags: qr aa rd ra"), "authoritative: {nx}");
    assert!(
        nx.contains(
            "cluster.local.\t\t5\tIN\tSOA\tns.dns.cluster.local. hostmaster.cluster.local."
        ),
        "{nx}"
    );
    let nodata = dig.run(&["AAAA", &web]);
    assert!(
        nodata.contains("status: NOERROR") && nodata.contains("ANSWER: 0"),
        "{nodata}"
    );
    assert!(
        nodata.contains("IN\tSOA\tns.dns.cluster.local."),
        "{nodata}"
    );

    // A change is answered within a second: a deleted Service, a new one.
    k1s.kubectl_in(&k, NS, &["delete", "svc", "web", "--wait=false"])
        .ok();
    let deleted = Instant::now();
    while dig.status(&[&web]) != "NXDOMAIN" {
        assert!(
            deleted.elapsed() < Duration::from_secs(5),
            "web still answers"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let took = deleted.elapsed();
    assert!(
        took < Duration::from_secs(1),
        "deletion answered after {took:?}"
    );
    k1s.kubectl_in(
        &k,
        NS,
        &["create", "service", "clusterip", "late", "--tcp=80:80"],
    )
    .ok();
    let created = Instant::now();
    while dig
        .short(&[&format!("late.{NS}.svc.cluster.local")])
        .is_empty()
    {
        assert!(
            created.elapsed() < Duration::from_secs(5),
            "late never answers"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let took = created.elapsed();
    assert!(
        took < Duration::from_secs(1),
        "new Service answered after {took:?}"
    );
}

#[test]
fn disable_coredns_turns_the_dns_off() {
    let port = free_dns_port();
    let listen = format!("127.0.0.1:{port}");
    let k1s = K1s::start_with(&["--disable", "coredns", "--dns-listen", &listen]);
    let k = newest_kubectl();
    let out = k1s.kubectl_in(&k, "kube-system", &["get", "svc", "kube-dns"]);
    assert_ne!(out.code, 0, "no kube-dns Service: {}", out.stdout);
    // Nothing serves the port: the TCP listener is free.
    assert!(
        TcpListener::bind(("127.0.0.1", port)).is_ok(),
        "something serves {listen}"
    );
}

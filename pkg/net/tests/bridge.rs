//! The bridge network on real namespaces: needs root, iproute2 (`ip netns`) and nftables
//! (`nft`), as in CI; fails saying what is missing rather than skipping.
//!
//! Every name is unique to this process (bridge, namespaces, nftables table, CIDRs, host
//! ports) so the tests run beside each other and beside other suites, and a guard removes
//! what a test made even when it fails.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use k1s_net::{BridgeConfig, BridgeNetwork, HostPort, NetError, PodNetwork, PodRef};

/// Panics (never skips) when the machine cannot run these tests.
fn require_tools() {
    assert!(
        // /proc/self belongs to the process's effective user.
        std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0),
        "the pod network tests need root (network namespaces, links, nftables)"
    );
    for (tool, package) in [("ip", "iproute2"), ("nft", "nftables")] {
        let found = Command::new(tool).arg("-V").output().is_ok();
        assert!(
            found,
            "the pod network tests need `{tool}`: apt-get install {package}"
        );
    }
}

/// A per-process number keeping names and ranges apart from other test processes.
fn salt() -> u32 {
    std::process::id()
}

fn run(cmd: &[&str]) -> std::process::Output {
    Command::new(cmd[0])
        .args(&cmd[1..])
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"))
}

/// What one test made on the node; all of it is removed on drop.
struct Env {
    bridges: Vec<String>,
    tables: Vec<String>,
    namespaces: Vec<String>,
    state: tempfile::TempDir,
    tag: String,
}

impl Env {
    fn new(test: u8) -> Self {
        require_tools();
        Self {
            bridges: Vec::new(),
            tables: Vec::new(),
            namespaces: Vec::new(),
            state: tempfile::tempdir().expect("tempdir"),
            tag: format!("{:x}{test}", salt() % 0xfffff),
        }
    }

    /// A configuration with names of its own; `n` picks the bridge and the /24.
    fn config(&mut self, n: u8, pod_prefix: u8) -> BridgeConfig {
        let second = 100 + (salt() % 100) as u8;
        let test = self
            .tag
            .chars()
            .last()
            .and_then(|c| c.to_digit(10))
            .unwrap_or(0) as u8;
        let pod_cidr = format!("10.{second}.{}.0/{pod_prefix}", test * 10 + n)
            .parse()
            .expect("cidr");
        let cluster_cidr = format!("10.{second}.0.0/16").parse().expect("cidr");
        let mut config = BridgeConfig::new(
            pod_cidr,
            cluster_cidr,
            self.state.path().join(format!("net{n}")),
        );
        config.bridge = format!("k1t{}b{n}", self.tag);
        config.nft_table = format!("k1t{}t{n}", self.tag);
        self.bridges.push(config.bridge.clone());
        self.tables.push(config.nft_table.clone());
        config
    }

    /// A fresh network namespace (`ip netns add`), returning its bind-mounted path.
    fn netns(&mut self, name: &str) -> PathBuf {
        let name = format!("k1t{}{name}", self.tag);
        let out = run(&["ip", "netns", "add", &name]);
        assert!(out.status.success(), "ip netns add {name}: {out:?}");
        self.namespaces.push(name.clone());
        PathBuf::from("/run/netns").join(name)
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        for ns in &self.namespaces {
            run(&["ip", "netns", "del", ns]);
        }
        for bridge in &self.bridges {
            let ports = run(&["ip", "-o", "link", "show", "master", bridge]);
            for line in String::from_utf8_lossy(&ports.stdout).lines() {
                if let Some(name) = line.split(':').nth(1) {
                    let name = name.trim().split('@').next().unwrap_or("");
                    run(&["ip", "link", "del", name]);
                }
            }
            run(&["ip", "link", "del", bridge]);
        }
        for table in &self.tables {
            run(&["nft", "delete", "table", "ip", table]);
        }
    }
}

fn pod(uid: &str) -> PodRef {
    PodRef {
        uid: uid.to_owned(),
        namespace: "default".to_owned(),
        name: format!("pod-{uid}"),
    }
}

fn v4(addresses: &k1s_net::PodAddresses) -> Ipv4Addr {
    match addresses.ips.first() {
        Some(IpAddr::V4(ip)) => *ip,
        other => panic!("no IPv4 address: {other:?}"),
    }
}

/// Runs `f` on a thread inside the namespace at `netns`.
fn in_netns<T: Send + 'static>(netns: &Path, f: impl FnOnce() -> T + Send + 'static) -> T {
    let file = std::fs::File::open(netns).expect("open netns");
    std::thread::spawn(move || {
        rustix::thread::move_into_link_name_space(
            file.as_fd(),
            Some(rustix::thread::LinkNameSpaceType::Network),
        )
        .expect("setns");
        f()
    })
    .join()
    .expect("namespace thread")
}

/// A TCP server inside `netns` (or on the host) answering every connection with `reply`.
fn serve(netns: Option<&Path>, addr: SocketAddr, reply: &'static str) {
    let bind = move || TcpListener::bind(addr).unwrap_or_else(|e| panic!("bind {addr}: {e}"));
    let listener = match netns {
        Some(ns) => in_netns(ns, bind),
        None => bind(),
    };
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let _ = conn.write_all(reply.as_bytes());
        }
    });
}

/// Connects to `addr` (from inside `netns` when given) and reads the server's reply.
fn fetch(netns: Option<&Path>, addr: SocketAddr) -> Result<String, String> {
    let get = move || {
        let mut conn = TcpStream::connect_timeout(&addr, Duration::from_secs(3))
            .map_err(|e| format!("connect {addr}: {e}"))?;
        conn.set_read_timeout(Some(Duration::from_secs(3)))
            .map_err(|e| e.to_string())?;
        let mut reply = String::new();
        conn.read_to_string(&mut reply)
            .map_err(|e| format!("read {addr}: {e}"))?;
        Ok(reply)
    };
    match netns {
        Some(ns) => in_netns(ns, get),
        None => get(),
    }
}

fn link_exists(name: &str) -> bool {
    run(&["ip", "link", "show", name]).status.success()
}

fn host_port(n: u16) -> u16 {
    20000 + (salt() % 4000) as u16 * 10 + n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_reach_each_other_the_host_and_are_reached_through_host_ports() {
    let mut env = Env::new(1);
    let config = env.config(1, 24);
    let net = BridgeNetwork::new(config.clone()).await.expect("network");
    let gateway = net.gateway();
    assert_eq!(gateway, config.pod_cidr.hosts().next().expect("host"));
    let (ns_a, ns_b) = (env.netns("a"), env.netns("b"));

    let a = v4(&net.attach(&pod("a"), &ns_a, &[]).await.expect("attach a"));
    let b = v4(&net.attach(&pod("b"), &ns_b, &[]).await.expect("attach b"));
    assert_ne!(a, b);
    for ip in [a, b] {
        assert!(config.pod_cidr.contains(&ip) && ip != gateway, "{ip}");
    }
    // Attached again: the same address, nothing broken.
    let again = net
        .attach(&pod("a"), &ns_a, &[])
        .await
        .expect("attach a again");
    assert_eq!(v4(&again), a);
    assert!(link_exists(&net.host_veth_name("a")));

    // Pod to pod through the bridge, both ways.
    serve(Some(&ns_a), SocketAddr::from((a, 8080)), "from a");
    serve(Some(&ns_b), SocketAddr::from((b, 8080)), "from b");
    assert_eq!(
        fetch(Some(&ns_a), (b, 8080).into()).as_deref(),
        Ok("from b")
    );
    assert_eq!(
        fetch(Some(&ns_b), (a, 8080).into()).as_deref(),
        Ok("from a")
    );
    // Pod to the host through the gateway.
    serve(None, SocketAddr::from((gateway, 8081)), "from the host");
    assert_eq!(
        fetch(Some(&ns_a), (gateway, 8081).into()).as_deref(),
        Ok("from the host")
    );

    // A host port, added by attaching again: from the node's address and from localhost.
    let port = host_port(1);
    let mapping = HostPort {
        protocol: "TCP".to_owned(),
        host_port: port,
        container_port: 8080,
        host_ip: None,
    };
    let again = net
        .attach(&pod("b"), &ns_b, std::slice::from_ref(&mapping))
        .await
        .expect("attach b with a host port");
    assert_eq!(v4(&again), b);
    assert_eq!(
        fetch(None, (gateway, port).into()).as_deref(),
        Ok("from b"),
        "host port {port} on the node's address"
    );
    assert_eq!(
        fetch(None, (Ipv4Addr::LOCALHOST, port).into()).as_deref(),
        Ok("from b"),
        "host port {port} on localhost"
    );
    // Another pod through the node's address, and the pod itself (hairpin).
    assert_eq!(
        fetch(Some(&ns_a), (gateway, port).into()).as_deref(),
        Ok("from b")
    );
    assert_eq!(
        fetch(Some(&ns_b), (gateway, port).into()).as_deref(),
        Ok("from b")
    );

    // Detach: the veth goes, the address is free, the host port is gone.
    net.detach(&pod("b")).await.expect("detach b");
    net.detach(&pod("b")).await.expect("detach b is idempotent");
    assert!(!link_exists(&net.host_veth_name("b")));
    let rules = run(&["nft", "list", "table", "ip", &config.nft_table]);
    let rules = String::from_utf8_lossy(&rules.stdout);
    assert!(!rules.contains(&format!("dport {port}")), "{rules}");
    assert!(fetch(Some(&ns_a), (b, 8080).into()).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_detached_pods_address_goes_to_the_next_pod() {
    let mut env = Env::new(2);
    // A /30: the gateway and one pod address.
    let net = BridgeNetwork::new(env.config(1, 30))
        .await
        .expect("network");
    let (ns1, ns2) = (env.netns("p1"), env.netns("p2"));
    let first = v4(&net.attach(&pod("p1"), &ns1, &[]).await.expect("attach p1"));
    let err = net
        .attach(&pod("p2"), &ns2, &[])
        .await
        .expect_err("range is full");
    assert!(matches!(err, NetError::RangeFull(_)), "{err}");
    assert!(
        err.to_string()
            .starts_with("no IP addresses available in range set"),
        "{err}"
    );
    assert!(
        !link_exists(&net.host_veth_name("p2")),
        "a failed attach leaves nothing"
    );
    net.detach(&pod("p1")).await.expect("detach p1");
    let second = v4(&net.attach(&pod("p2"), &ns2, &[]).await.expect("attach p2"));
    assert_eq!(second, first);
    assert_eq!(
        fetch(Some(&ns2), (net.gateway(), 9).into()).map_err(|e| e.contains("refused")),
        Err(true),
        "the pod reaches the gateway (which refuses the port)"
    );

    // The pod's sandbox is made anew (a new namespace): same address, wired there, the
    // old pair gone.
    let ns2b = env.netns("p2b");
    let again = v4(&net
        .attach(&pod("p2"), &ns2b, &[])
        .await
        .expect("attach p2 anew"));
    assert_eq!(again, second);
    let old_eth0 = run(&["ip", "-n", &ns_name(&ns2), "link", "show", "eth0"]);
    assert!(
        !old_eth0.status.success(),
        "the old namespace lost its eth0"
    );
    assert_eq!(
        fetch(Some(&ns2b), (net.gateway(), 9).into()).map_err(|e| e.contains("refused")),
        Err(true),
        "the new namespace reaches the gateway"
    );
    // The bridge keeps the MAC it was given whichever ports come and go.
    let mac = |bridge: &str| std::fs::read_to_string(format!("/sys/class/net/{bridge}/address"));
    let bridge = net.config().bridge.clone();
    let before = mac(&bridge).expect("bridge MAC");
    assert!(before.starts_with("02:"), "{before}");
    net.detach(&pod("p2")).await.expect("detach p2");
    assert_eq!(mac(&bridge).expect("bridge MAC"), before);
}

fn ns_name(path: &Path) -> String {
    path.file_name()
        .and_then(|n| n.to_str())
        .expect("namespace name")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_allocations_and_reconcile_frees_the_dead() {
    let mut env = Env::new(3);
    let config = env.config(1, 24);
    let (ns1, ns2, ns3) = (env.netns("r1"), env.netns("r2"), env.netns("r3"));
    let port = host_port(3);
    let (ip1, ip2) = {
        let net = BridgeNetwork::new(config.clone()).await.expect("network");
        let ip1 = v4(&net.attach(&pod("r1"), &ns1, &[]).await.expect("attach r1"));
        let mapping = HostPort {
            protocol: "TCP".to_owned(),
            host_port: port,
            container_port: 8080,
            host_ip: None,
        };
        let ip2 = v4(&net
            .attach(&pod("r2"), &ns2, &[mapping])
            .await
            .expect("attach r2"));
        (ip1, ip2)
    };

    // The server restarts: a new network over the same state directory.
    let net = BridgeNetwork::new(config.clone())
        .await
        .expect("network again");
    let rules = run(&["nft", "list", "table", "ip", &config.nft_table]);
    assert!(
        String::from_utf8_lossy(&rules.stdout).contains(&format!("dport {port}")),
        "host ports are rebuilt after a restart"
    );
    let ip3 = v4(&net.attach(&pod("r3"), &ns3, &[]).await.expect("attach r3"));
    assert!(ip3 != ip1 && ip3 != ip2, "{ip3} was still allocated");
    assert_eq!(
        v4(&net
            .attach(&pod("r1"), &ns1, &[])
            .await
            .expect("attach r1 again")),
        ip1
    );

    // r2 died while the server was down.
    net.reconcile(&["r1".to_owned(), "r3".to_owned()])
        .await
        .expect("reconcile");
    assert!(!link_exists(&net.host_veth_name("r2")));
    assert!(!config.state_dir.join("ips").join(ip2.to_string()).exists());
    assert!(config.state_dir.join("ips").join(ip1.to_string()).exists());
    let rules = run(&["nft", "list", "table", "ip", &config.nft_table]);
    let rules = String::from_utf8_lossy(&rules.stdout);
    assert!(!rules.contains(&format!("dport {port}")), "{rules}");
    assert!(link_exists(&net.host_veth_name("r1")));

    // The survivors still talk.
    serve(Some(&ns1), SocketAddr::from((ip1, 8080)), "r1");
    assert_eq!(fetch(Some(&ns3), (ip1, 8080).into()).as_deref(), Ok("r1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_networks_with_their_own_bridges_coexist() {
    let mut env = Env::new(4);
    let (c1, c2) = (env.config(1, 24), env.config(2, 24));
    let net1 = BridgeNetwork::new(c1.clone()).await.expect("network 1");
    let net2 = BridgeNetwork::new(c2.clone()).await.expect("network 2");
    let (ns1, ns2) = (env.netns("x1"), env.netns("x2"));
    // The same pod UID on both: distinct veths, since names include the bridge.
    assert_ne!(net1.host_veth_name("x"), net2.host_veth_name("x"));
    let ip1 = v4(&net1.attach(&pod("x"), &ns1, &[]).await.expect("attach 1"));
    let ip2 = v4(&net2.attach(&pod("x"), &ns2, &[]).await.expect("attach 2"));
    assert!(c1.pod_cidr.contains(&ip1), "{ip1}");
    assert!(c2.pod_cidr.contains(&ip2), "{ip2}");
    serve(None, SocketAddr::from((net1.gateway(), 8082)), "gw1");
    serve(None, SocketAddr::from((net2.gateway(), 8082)), "gw2");
    assert_eq!(
        fetch(Some(&ns1), (net1.gateway(), 8082).into()).as_deref(),
        Ok("gw1")
    );
    assert_eq!(
        fetch(Some(&ns2), (net2.gateway(), 8082).into()).as_deref(),
        Ok("gw2")
    );
    // Tearing one down leaves the other alone.
    net1.teardown().await.expect("teardown 1");
    assert!(!link_exists(&c1.bridge));
    assert!(link_exists(&c2.bridge));
    assert_eq!(
        fetch(Some(&ns2), (net2.gateway(), 8082).into()).as_deref(),
        Ok("gw2")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_attached_at_once_get_distinct_addresses() {
    let mut env = Env::new(5);
    let net = std::sync::Arc::new(
        BridgeNetwork::new(env.config(1, 24))
            .await
            .expect("network"),
    );
    let namespaces: Vec<_> = (0..8).map(|i| env.netns(&format!("m{i}"))).collect();
    let started = std::time::Instant::now();
    let attaches = namespaces.iter().enumerate().map(|(i, ns)| {
        let net = net.clone();
        let ns = ns.clone();
        tokio::spawn(async move { net.attach(&pod(&format!("m{i}")), &ns, &[]).await })
    });
    let mut ips = Vec::new();
    for attach in futures::future::join_all(attaches).await {
        ips.push(v4(&attach.expect("task").expect("attach")));
    }
    eprintln!("8 pods attached at once in {:?}", started.elapsed());
    let mut distinct = ips.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), ips.len(), "{ips:?}");
    serve(Some(&namespaces[0]), SocketAddr::from((ips[0], 8080)), "m0");
    assert_eq!(
        fetch(Some(&namespaces[7]), (ips[0], 8080).into()).as_deref(),
        Ok("m0")
    );

    // A namespace that is not there: an error naming it, and nothing kept.
    let missing = Path::new("/run/netns/k1s-no-such-namespace");
    let err = net
        .attach(&pod("ghost"), missing, &[])
        .await
        .expect_err("no namespace");
    assert!(err.to_string().contains("k1s-no-such-namespace"), "{err}");
    net.reconcile(&(0..8).map(|i| format!("m{i}")).collect::<Vec<_>>())
        .await
        .expect("reconcile");
    assert!(!link_exists(&net.host_veth_name("ghost")));
}

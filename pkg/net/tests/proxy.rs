//! The Service proxy on real namespaces and nftables, fed by an in-memory API server:
//! needs root, iproute2 (`ip netns`), nftables (`nft`) and conntrack, as in CI; fails
//! saying what is missing rather than skipping.
//!
//! Every name is unique to this process and test (bridge, namespaces, nftables tables,
//! CIDRs, ClusterIPs, node ports) and a guard removes what a test made even when it fails.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use k1s_apiserver::test_util::TestApiServer;
use k1s_net::proxy::{ProxyConfig, cleanup};
use k1s_net::{BridgeConfig, BridgeNetwork, PodNetwork, PodRef};
use k8s_openapi::api::core::v1::{Namespace, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;

/// Panics (never skips) when the machine cannot run these tests.
fn require_tools() {
    assert!(
        std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0),
        "the service proxy tests need root (network namespaces, links, nftables)"
    );
    for (tool, package) in [
        ("ip", "iproute2"),
        ("nft", "nftables"),
        ("conntrack", "conntrack"),
    ] {
        let found = Command::new(tool).arg("-V").output().is_ok();
        assert!(
            found,
            "the service proxy tests need `{tool}`: apt-get install {package}"
        );
    }
}

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
    bridge: String,
    tables: Vec<String>,
    namespaces: Vec<String>,
    routes: Vec<String>,
    _state: tempfile::TempDir,
    tag: String,
    config: BridgeConfig,
    /// The test's /24 of ClusterIPs (inside the API server's 10.43.0.0/16).
    service_net: [u8; 3],
}

impl Env {
    fn new(test: u8) -> Self {
        require_tools();
        let tag = format!("{:x}{test}", salt() % 0xfffff);
        let state = tempfile::tempdir().expect("tempdir");
        let second = 100 + (salt() % 100) as u8;
        // 10.<second>.(200+test).0/24: apart from the bridge tests' /24s.
        let pod_cidr = format!("10.{second}.{}.0/24", 200 + test)
            .parse()
            .expect("cidr");
        let cluster_cidr = format!("10.{second}.0.0/16").parse().expect("cidr");
        let mut config = BridgeConfig::new(pod_cidr, cluster_cidr, state.path().join("net"));
        config.bridge = format!("k1p{tag}b");
        config.nft_table = format!("k1p{tag}t");
        Self {
            bridge: config.bridge.clone(),
            tables: vec![config.nft_table.clone(), format!("k1p{tag}proxy")],
            namespaces: Vec::new(),
            routes: Vec::new(),
            _state: state,
            tag,
            config,
            service_net: [10, 43, 100 + ((salt() / 7) % 150) as u8 + test],
        }
    }

    fn proxy_table(&self) -> String {
        self.tables[1].clone()
    }

    fn cluster_ip(&self, n: u8) -> Ipv4Addr {
        let [a, b, c] = self.service_net;
        Ipv4Addr::new(a, b, c, n)
    }

    fn node_port(&self, n: u16) -> u16 {
        30000 + (salt() % 270) as u16 * 10 + n
    }

    fn netns(&mut self, name: &str) -> PathBuf {
        let name = format!("k1p{}{name}", self.tag);
        let out = run(&["ip", "netns", "add", &name]);
        assert!(out.status.success(), "ip netns add {name}: {out:?}");
        self.namespaces.push(name.clone());
        PathBuf::from("/run/netns").join(name)
    }

    /// Without a default route the host has no way to a ClusterIP at all (as with
    /// upstream kube-proxy); give the test's Service /24 one through the bridge.
    fn route_services_if_no_default(&mut self) {
        let out = run(&["ip", "route", "show", "default"]);
        if String::from_utf8_lossy(&out.stdout).trim().is_empty() {
            let [a, b, c] = self.service_net;
            let net = format!("{a}.{b}.{c}.0/24");
            let out = run(&["ip", "route", "add", &net, "dev", &self.bridge]);
            assert!(out.status.success(), "ip route add {net}: {out:?}");
            self.routes.push(net);
        }
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        for r in &self.routes {
            run(&["ip", "route", "del", r]);
        }
        for ns in &self.namespaces {
            run(&["ip", "netns", "del", ns]);
        }
        let ports = run(&["ip", "-o", "link", "show", "master", &self.bridge]);
        for line in String::from_utf8_lossy(&ports.stdout).lines() {
            if let Some(name) = line.split(':').nth(1) {
                let name = name.trim().split('@').next().unwrap_or("");
                run(&["ip", "link", "del", name]);
            }
        }
        run(&["ip", "link", "del", &self.bridge]);
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

/// A TCP server inside `netns` answering every connection with `reply`.
fn serve(netns: &Path, addr: SocketAddr, reply: &'static str) {
    let listener = in_netns(netns, move || {
        TcpListener::bind(addr).unwrap_or_else(|e| panic!("bind {addr}: {e}"))
    });
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let _ = conn.write_all(reply.as_bytes());
        }
    });
}

/// A UDP server inside `netns` answering every datagram with `reply`.
fn serve_udp(netns: &Path, addr: SocketAddr, reply: &'static str) {
    let socket = in_netns(netns, move || {
        UdpSocket::bind(addr).unwrap_or_else(|e| panic!("bind udp {addr}: {e}"))
    });
    std::thread::spawn(move || {
        let mut buf = [0u8; 64];
        while let Ok((_, from)) = socket.recv_from(&mut buf) {
            let _ = socket.send_to(reply.as_bytes(), from);
        }
    });
}

/// Sends one datagram from the host's `socket` to `addr` and reads the answer.
fn ask_udp(socket: &UdpSocket, addr: SocketAddr) -> Option<String> {
    socket.send_to(b"?", addr).ok()?;
    let mut buf = [0u8; 64];
    let (n, _) = socket.recv_from(&mut buf).ok()?;
    Some(String::from_utf8_lossy(&buf[..n]).into_owned())
}

/// Connects to `addr` (from inside `netns` when given) and reads the reply; the error
/// kind tells a refusal from a timeout.
fn fetch_blocking(netns: Option<PathBuf>, addr: SocketAddr) -> Result<String, std::io::Error> {
    let get = move || {
        let mut conn = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
        conn.set_read_timeout(Some(Duration::from_secs(2)))?;
        let mut reply = String::new();
        conn.read_to_string(&mut reply)?;
        Ok(reply)
    };
    match netns {
        Some(ns) => in_netns(&ns, get),
        None => get(),
    }
}

async fn fetch(netns: Option<&Path>, addr: SocketAddr) -> Result<String, std::io::Error> {
    let ns = netns.map(Path::to_path_buf);
    tokio::task::spawn_blocking(move || fetch_blocking(ns, addr))
        .await
        .expect("fetch thread")
}

/// The replies of `n` connections.
async fn spread(netns: Option<&Path>, addr: SocketAddr, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    for _ in 0..n {
        match fetch(netns, addr).await {
            Ok(r) => out.push(r),
            Err(e) => panic!("connect {addr} from {netns:?}: {e}"),
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Waits (bounded) until `check` holds.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for: {what}");
}

fn slice_json(ns: &str, svc: &str, eps: &[(Ipv4Addr, &str, bool)]) -> serde_json::Value {
    let endpoints: Vec<_> = eps
        .iter()
        .map(|(ip, name, ready)| {
            // Pod a is on this node (n1), the others elsewhere.
            let node = if *name == "a" { "n1" } else { "n2" };
            json!({"addresses": [ip.to_string()], "conditions": {"ready": ready},
                   "nodeName": node,
                   "targetRef": {"kind": "Pod", "namespace": ns, "name": name}})
        })
        .collect();
    json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"namespace": ns, "name": format!("{svc}-x"),
                     "labels": {"kubernetes.io/service-name": svc}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        "endpoints": endpoints,
    })
}

fn table_text(table: &str) -> String {
    String::from_utf8_lossy(&run(&["nft", "list", "table", "ip", table]).stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_ips_and_node_ports_balance_over_ready_endpoints_and_follow_changes() {
    let mut env = Env::new(1);
    let net = BridgeNetwork::new(env.config.clone())
        .await
        .expect("network");
    let gateway = net.gateway();
    env.route_services_if_no_default();
    let (ns_a, ns_b, ns_c) = (env.netns("a"), env.netns("b"), env.netns("c"));
    let a = v4(&net.attach(&pod("a"), &ns_a, &[]).await.expect("attach a"));
    let b = v4(&net.attach(&pod("b"), &ns_b, &[]).await.expect("attach b"));
    let c = v4(&net.attach(&pod("c"), &ns_c, &[]).await.expect("attach c"));
    serve(&ns_a, (a, 8080).into(), "a");
    serve(&ns_b, (b, 8080).into(), "b");
    serve(&ns_c, (c, 8080).into(), "c");
    serve_udp(&ns_a, (a, 5353).into(), "a");
    serve_udp(&ns_b, (b, 5353).into(), "b");

    let server = TestApiServer::new().await;
    let client = server.client();
    let ns = "proxy";
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": ns}})).expect("ns"),
        )
        .await
        .expect("namespace");
    let services: Api<Service> = Api::namespaced(client.clone(), ns);
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), ns);

    let (web_ip, empty_ip) = (env.cluster_ip(10), env.cluster_ip(11));
    let node_port = env.node_port(1);
    let external_ip = env.cluster_ip(200);
    let web: Service = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"type": "NodePort", "clusterIP": web_ip.to_string(),
                 "externalIPs": [external_ip.to_string()],
                 "ports": [{"name": "http", "port": 80, "targetPort": "http",
                            "nodePort": node_port}]}
    }))
    .expect("service");
    services
        .create(&PostParams::default(), &web)
        .await
        .expect("create web");
    let slice: EndpointSlice = serde_json::from_value(slice_json(
        ns,
        "web",
        &[(a, "a", true), (b, "b", true), (c, "c", false)],
    ))
    .expect("slice");
    slices
        .create(&PostParams::default(), &slice)
        .await
        .expect("create slice");
    let empty: Service = serde_json::from_value(json!({
        "metadata": {"name": "empty"},
        "spec": {"clusterIP": empty_ip.to_string(), "ports": [{"name": "http", "port": 80}]}
    }))
    .expect("service");
    services
        .create(&PostParams::default(), &empty)
        .await
        .expect("create empty");

    let sticky_ip = env.cluster_ip(12);
    let sticky: Service = serde_json::from_value(json!({
        "metadata": {"name": "sticky"},
        "spec": {"clusterIP": sticky_ip.to_string(), "sessionAffinity": "ClientIP",
                 "ports": [{"name": "http", "port": 80}]}
    }))
    .expect("service");
    services
        .create(&PostParams::default(), &sticky)
        .await
        .expect("create sticky");
    let slice: EndpointSlice =
        serde_json::from_value(slice_json(ns, "sticky", &[(a, "a", true), (b, "b", true)]))
            .expect("slice");
    slices
        .create(&PostParams::default(), &slice)
        .await
        .expect("create sticky slice");

    let local_ip = env.cluster_ip(13);
    let local: Service = serde_json::from_value(json!({
        "metadata": {"name": "local"},
        "spec": {"clusterIP": local_ip.to_string(), "internalTrafficPolicy": "Local",
                 "ports": [{"name": "http", "port": 80}]}
    }))
    .expect("service");
    services
        .create(&PostParams::default(), &local)
        .await
        .expect("create local");
    let slice: EndpointSlice =
        serde_json::from_value(slice_json(ns, "local", &[(a, "a", true), (b, "b", true)]))
            .expect("slice");
    slices
        .create(&PostParams::default(), &slice)
        .await
        .expect("create local slice");

    let udp_ip = env.cluster_ip(14);
    let udp: Service = serde_json::from_value(json!({
        "metadata": {"name": "udp"},
        "spec": {"clusterIP": udp_ip.to_string(),
                 "ports": [{"name": "dns", "port": 53, "protocol": "UDP", "targetPort": "dns"}]}
    }))
    .expect("service");
    services
        .create(&PostParams::default(), &udp)
        .await
        .expect("create udp");
    let udp_slice = |ip: Ipv4Addr, name: &str| {
        json!({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"namespace": ns, "name": "udp-x",
                         "labels": {"kubernetes.io/service-name": "udp"}},
            "addressType": "IPv4",
            "ports": [{"name": "dns", "port": 5353, "protocol": "UDP"}],
            "endpoints": [{"addresses": [ip.to_string()], "conditions": {"ready": true},
                           "targetRef": {"kind": "Pod", "namespace": ns, "name": name}}],
        })
    };
    slices
        .create(
            &PostParams::default(),
            &serde_json::from_value(udp_slice(a, "a")).expect("slice"),
        )
        .await
        .expect("create udp slice");

    let mut config = ProxyConfig::new(Some(env.config.cluster_cidr));
    config.table = env.proxy_table();
    config.node_name = Some("n1".to_owned());
    let (synced_tx, mut synced) = tokio::sync::mpsc::unbounded_channel();
    config.synced = Some(synced_tx);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let proxy = tokio::spawn(k1s_net::proxy::run(client.clone(), config, async move {
        let _ = stopped.await;
    }));

    let web_addr = SocketAddr::from((web_ip, 80));
    eventually("the ClusterIP answers from the host", || async {
        fetch(None, web_addr).await.is_ok()
    })
    .await;
    // Many connections reach every ready endpoint and never the unready one.
    assert_eq!(
        spread(None, web_addr, 40).await,
        ["a", "b"],
        "from the host"
    );
    assert_eq!(
        spread(Some(&ns_c), web_addr, 40).await,
        ["a", "b"],
        "from pod c"
    );
    // Hairpin: pod a reaches itself through its Service.
    assert_eq!(
        spread(Some(&ns_a), web_addr, 40).await,
        ["a", "b"],
        "from pod a (hairpin)"
    );
    // NodePort on the node's address, from the host and from a pod.
    let np_addr = SocketAddr::from((gateway, node_port));
    assert_eq!(
        spread(None, np_addr, 30).await,
        ["a", "b"],
        "node port from the host"
    );
    assert_eq!(
        spread(Some(&ns_c), np_addr, 30).await,
        ["a", "b"],
        "node port from pod c"
    );

    // sessionAffinity ClientIP: one client keeps its endpoint.
    assert_eq!(
        spread(None, (sticky_ip, 80).into(), 20).await.len(),
        1,
        "ClientIP affinity from the host"
    );
    assert_eq!(
        spread(Some(&ns_c), (sticky_ip, 80).into(), 20).await.len(),
        1,
        "ClientIP affinity from pod c"
    );

    // NodePort on localhost (route_localnet on the bridge, masqueraded), and an
    // externalIP.
    assert_eq!(
        spread(None, (Ipv4Addr::LOCALHOST, node_port).into(), 20).await,
        ["a", "b"],
        "node port on localhost"
    );
    assert_eq!(
        spread(None, (external_ip, 80).into(), 20).await,
        ["a", "b"],
        "externalIP from the host"
    );
    assert_eq!(
        spread(Some(&ns_c), (external_ip, 80).into(), 20).await,
        ["a", "b"],
        "externalIP from pod c"
    );

    // internalTrafficPolicy Local: only the endpoint on this node.
    assert_eq!(
        spread(Some(&ns_c), (local_ip, 80).into(), 20).await,
        ["a"],
        "internalTrafficPolicy Local from pod c"
    );

    // UDP through a named target port; when its endpoint goes, the flow's conntrack
    // entry goes too, so the same client socket reaches the new endpoint at once.
    let udp_addr = SocketAddr::from((udp_ip, 53));
    let client_socket = UdpSocket::bind("0.0.0.0:0").expect("udp socket");
    client_socket
        .set_read_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    let client_socket = std::sync::Arc::new(client_socket);
    let sock = client_socket.clone();
    let first = tokio::task::spawn_blocking(move || ask_udp(&sock, udp_addr))
        .await
        .expect("udp");
    assert_eq!(first.as_deref(), Some("a"), "UDP ClusterIP");
    slices
        .replace(
            "udp-x",
            &PostParams::default(),
            &serde_json::from_value({
                let mut v = udp_slice(b, "b");
                v["metadata"]["resourceVersion"] = slices
                    .get("udp-x")
                    .await
                    .expect("get udp slice")
                    .metadata
                    .resource_version
                    .into();
                v
            })
            .expect("slice"),
        )
        .await
        .expect("replace udp slice");
    eventually("the UDP flow moves to the new endpoint", || {
        let sock = client_socket.clone();
        async move {
            tokio::task::spawn_blocking(move || ask_udp(&sock, udp_addr))
                .await
                .expect("udp")
                .as_deref()
                == Some("b")
        }
    })
    .await;

    // No endpoints: refused at once, not a timeout.
    let started = Instant::now();
    let refused = fetch(None, (empty_ip, 80).into()).await;
    assert_eq!(
        refused.as_ref().map_err(std::io::Error::kind).err(),
        Some(std::io::ErrorKind::ConnectionRefused),
        "{refused:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(1));
    let refused = fetch(Some(&ns_a), (empty_ip, 80).into()).await;
    assert_eq!(
        refused.as_ref().map_err(std::io::Error::kind).err(),
        Some(std::io::ErrorKind::ConnectionRefused),
        "from a pod: {refused:?}"
    );

    // A change of readiness: only this Service's chains change, and traffic follows.
    let before = table_text(&env.proxy_table());
    let patch = slice_json(
        ns,
        "web",
        &[(a, "a", true), (b, "b", false), (c, "c", true)],
    );
    slices
        .patch("web-x", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("patch slice");
    eventually("b leaves and c joins", || async {
        spread(None, web_addr, 20).await == ["a", "c"]
    })
    .await;
    let after = table_text(&env.proxy_table());
    assert!(after.contains(&format!("{empty_ip} . tcp . 80")), "{after}");
    assert_ne!(before, after);

    // An endpoint appears for the empty Service: it answers.
    let slice: EndpointSlice =
        serde_json::from_value(slice_json(ns, "empty", &[(b, "b", true)])).expect("slice");
    slices
        .create(&PostParams::default(), &slice)
        .await
        .expect("create slice");
    eventually(
        "the empty Service answers once it has an endpoint",
        || async { fetch(None, (empty_ip, 80).into()).await.ok().as_deref() == Some("b") },
    )
    .await;

    // Deleting the Service removes its rules.
    services
        .delete("web", &DeleteParams::default())
        .await
        .expect("delete web");
    eventually("web's rules are gone", || async {
        let t = table_text(&env.proxy_table());
        !t.contains(&web_ip.to_string())
            && !t.contains(&external_ip.to_string())
            && !t.contains(&format!("tcp . {node_port}"))
            && !t.contains("proxy/web/")
    })
    .await;

    let _ = stop.send(());
    proxy.await.expect("proxy task").expect("proxy");
    // The first sync wrote the table with nft; the changes after it went as netlink
    // batches (which the traffic checks above followed).
    let mut syncs = Vec::new();
    while let Ok(s) = synced.try_recv() {
        syncs.push(s);
    }
    assert!(
        syncs.first().is_some_and(|s| s.full && !s.netlink),
        "{syncs:?}"
    );
    assert!(
        syncs.iter().filter(|s| !s.full && s.netlink).count() >= 3,
        "{syncs:?}"
    );
    cleanup(&env.proxy_table()).await.expect("cleanup");
    assert!(
        !run(&["nft", "list", "table", "ip", &env.proxy_table()])
            .status
            .success(),
        "the table is gone after cleanup"
    );
    cleanup(&env.proxy_table())
        .await
        .expect("cleanup of an absent table");
}

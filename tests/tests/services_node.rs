//! Services from outside and inside the cluster, end to end, on a `k1s server` with its
//! agent: a Deployment behind a ClusterIP Service is reached from a pod by short name and
//! FQDN, spread over every ready replica and never an unready pod; a NodePort Service
//! answers on the node's address at its nodePort; a LoadBalancer Service gets the node's
//! address from servicelb (`ipMode: VIP`) and answers there. Then `k1s killall` after a
//! SIGKILL leaves no shim, container, netns, bridge or nftables table of that server.
//!
//! servicelb's choice of addresses is also checked on simulated nodes (several nodes, all
//! listed; `--disable servicelb` leaves the Service pending).
//!
//! Needs root, containerd, runc and nftables (scripts/test installs them) and the test
//! images (scripts/build-test-images, run by the harness when missing).

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream, UdpSocket};
use std::process::Command;
use std::time::Duration;

use k1s_e2e::{K1s, Kubectl, eventually, k1s_binary, newest_kubectl};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(120);

/// The host's address toward the outside (no packet is sent): the node address tests use,
/// since a LoadBalancer address on loopback would say little.
fn host_address() -> String {
    let s = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).expect("udp socket");
    s.connect((Ipv4Addr::new(10, 255, 255, 254), 9))
        .expect("a route off the host");
    let ip = s.local_addr().expect("local address").ip();
    assert!(
        !ip.is_loopback() && !ip.is_unspecified(),
        "the host has no address off loopback"
    );
    ip.to_string()
}

/// A random number from the clock and the process id (no rand dependency needed).
fn random(modulo: u32) -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    (nanos ^ std::process::id().wrapping_mul(2_654_435_761)) % modulo
}

/// Flags that keep this server's Service range, cluster DNS and DNS interface apart from
/// other servers on the host (their proxies and DNS would answer for the same addresses).
fn own_service_network() -> Vec<String> {
    let n = 200 + random(50);
    vec![
        "--service-cidr".into(),
        format!("10.{n}.0.0/16"),
        "--cluster-dns".into(),
        format!("10.{n}.0.10"),
        "--dns-interface".into(),
        format!("k1sd{:05x}", random(0xf_ffff)),
    ]
}

fn json(k1s: &K1s, k: &Kubectl, args: &[&str]) -> Option<Value> {
    let mut all = vec!["get"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-o", "json"]);
    let r = k1s.kubectl(k, &all);
    (r.code == 0).then(|| serde_json::from_str(&r.stdout).ok())?
}

fn apply(k1s: &K1s, k: &Kubectl, name: &str, manifest: &str) {
    let file = k1s.write_file(&format!("{name}.yaml"), manifest);
    let path = file.to_string_lossy().into_owned();
    k1s.kubectl(k, &["apply", "-f", &path]).ok();
}

fn node_ready(k1s: &K1s, k: &Kubectl) {
    let node = k1s.node_name().expect("node name");
    eventually(Duration::from_secs(60), "the node Ready", || {
        json(k1s, k, &["node", &node])?["status"]["conditions"]
            .as_array()?
            .iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
            .then_some(())
    });
}

fn is_ready(pod: &Value) -> bool {
    pod["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    })
}

/// One HTTP GET from the test process; the body when it answers 200.
fn http_get(addr: &str) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&addr.parse().ok()?, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: echo\r\n\r\n").ok()?;
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    let (head, body) = text.split_once("\r\n\r\n")?;
    head.contains(" 200 ").then(|| body.trim().to_string())
}

/// busybox's httpd answering its pod's name; `ready_path` is what the readiness probe
/// asks for (a missing path keeps the pod unready while it serves).
const ECHO: &str = r#"      containers:
      - name: echo
        image: busybox
        imagePullPolicy: IfNotPresent
        command: ["sh", "-c", "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www"]
        ports: [{name: http, containerPort: 8080}]
        readinessProbe:
          httpGet: {path: READY_PATH, port: 8080}
          periodSeconds: 1
"#;

#[test]
fn services_answer_inside_on_node_ports_and_on_the_load_balancer() {
    let node_ip = host_address();
    let mut flags = vec!["--node-ip".to_string(), node_ip.clone()];
    flags.extend(own_service_network());
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let k1s = K1s::start_with_agent(&flags);
    let k = newest_kubectl();
    node_ready(&k1s, &k);
    // A port of the node's address no other test's load balancer takes.
    let lb_port = 20000 + random(9000);

    let deployment = format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata: {{name: echo}}
spec:
  replicas: 3
  selector: {{matchLabels: {{app: echo}}}}
  template:
    metadata: {{labels: {{app: echo}}}}
    spec:
{}"#,
        ECHO.replace("READY_PATH", "/")
    );
    apply(&k1s, &k, "echo", &deployment);
    let unready = format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: echo-unready, labels: {{app: echo}}}}\nspec:\n{}",
        ECHO.replace("READY_PATH", "/not-ready")
            .lines()
            .map(|l| l.strip_prefix("    ").unwrap_or(l))
            .collect::<Vec<_>>()
            .join("\n")
    );
    apply(&k1s, &k, "echo-unready", &unready);
    apply(
        &k1s,
        &k,
        "services",
        &format!(
            r#"apiVersion: v1
kind: Service
metadata: {{name: echo}}
spec:
  selector: {{app: echo}}
  ports: [{{port: 80, targetPort: http}}]
---
apiVersion: v1
kind: Service
metadata: {{name: echo-np}}
spec:
  type: NodePort
  selector: {{app: echo}}
  ports: [{{port: 80, targetPort: 8080}}]
---
apiVersion: v1
kind: Service
metadata: {{name: echo-lb}}
spec:
  type: LoadBalancer
  externalTrafficPolicy: Local
  selector: {{app: echo}}
  ports: [{{port: {lb_port}, targetPort: 8080}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: client}}
spec:
  containers:
  - name: client
    image: busybox
    imagePullPolicy: IfNotPresent
    command: ["sleep", "3600"]
"#
        ),
    );

    // Three ready replicas, the extra pod Running and never Ready.
    let replicas: BTreeSet<String> = eventually(WAIT, "3 echo replicas Ready", || {
        let pods = json(&k1s, &k, &["pods", "-l", "app=echo"])?;
        let ready: BTreeSet<String> = pods["items"]
            .as_array()?
            .iter()
            .filter(|p| is_ready(p) && p["metadata"]["name"] != "echo-unready")
            .filter_map(|p| p["metadata"]["name"].as_str().map(String::from))
            .collect();
        (ready.len() == 3).then_some(ready)
    });
    eventually(WAIT, "client and echo-unready Running", || {
        let c = json(&k1s, &k, &["pod", "client"])?;
        let u = json(&k1s, &k, &["pod", "echo-unready"])?;
        (c["status"]["phase"] == "Running" && u["status"]["phase"] == "Running").then_some(())
    });
    let u = json(&k1s, &k, &["pod", "echo-unready"]).expect("echo-unready");
    assert!(!is_ready(&u), "echo-unready is Ready: {u}");

    // From a pod: short name and FQDN, every ready replica answers, the unready one never.
    let mut seen = BTreeSet::new();
    for (i, url) in ["http://echo", "http://echo.default.svc.cluster.local"]
        .iter()
        .enumerate()
    {
        let script = format!("for i in $(seq 30); do wget -qO- {url} || echo FAILED; done");
        let out = eventually(
            Duration::from_secs(30),
            &format!("{url} from the client pod"),
            || {
                let r = k1s.kubectl(&k, &["exec", "client", "--", "sh", "-c", &script]);
                (r.code == 0 && !r.stdout.contains("FAILED")).then_some(r.stdout)
            },
        );
        let names: BTreeSet<String> = out.lines().map(|l| l.trim().to_string()).collect();
        assert!(!names.contains("echo-unready"), "{url}: {names:?}");
        assert!(
            names.is_subset(&replicas),
            "{url}: {names:?} vs {replicas:?}"
        );
        seen.extend(names);
        if i == 0 {
            assert_eq!(seen, replicas, "30 requests did not reach every replica");
        }
    }

    // NodePort: the allocator's port, on the node's address.
    let node_port = eventually(Duration::from_secs(10), "echo-np's nodePort", || {
        json(&k1s, &k, &["svc", "echo-np"])?["spec"]["ports"][0]["nodePort"].as_u64()
    });
    let mut hits = BTreeSet::new();
    eventually(
        Duration::from_secs(30),
        "the NodePort on the node address reaching every replica",
        || {
            let body = http_get(&format!("{node_ip}:{node_port}"))?;
            assert!(replicas.contains(&body), "NodePort answered {body:?}");
            hits.insert(body);
            (hits == replicas).then_some(())
        },
    );

    // LoadBalancer: servicelb gives the node's address, which answers on the port.
    let lb = eventually(WAIT, "echo-lb's load balancer address", || {
        let svc = json(&k1s, &k, &["svc", "echo-lb"])?;
        let ingress = svc["status"]["loadBalancer"]["ingress"].as_array()?.clone();
        (!ingress.is_empty()).then_some(ingress)
    });
    assert_eq!(lb.len(), 1, "{lb:?}");
    assert_eq!(lb[0]["ip"], node_ip.as_str(), "{lb:?}");
    assert_eq!(lb[0]["ipMode"], "VIP", "{lb:?}");
    let shown = k1s.kubectl(&k, &["get", "svc", "echo-lb"]);
    assert!(shown.ok().contains(&node_ip), "{}", shown.stdout);
    let body = eventually(
        Duration::from_secs(30),
        "the LoadBalancer address answering",
        || http_get(&format!("{node_ip}:{lb_port}")),
    );
    assert!(replicas.contains(&body), "LoadBalancer answered {body:?}");

    // Deleted: the rules for the address go.
    k1s.kubectl(&k, &["delete", "svc", "echo-lb"]).ok();
    eventually(
        Duration::from_secs(10),
        "nothing on the old load balancer port",
        || {
            http_get(&format!("{node_ip}:{lb_port}"))
                .is_none()
                .then_some(())
        },
    );
}

fn sim_lb(k1s: &K1s, k: &Kubectl) {
    apply(
        k1s,
        k,
        "lb",
        r#"apiVersion: v1
kind: Service
metadata: {name: lb}
spec:
  type: LoadBalancer
  selector: {app: lb}
  ports: [{port: 80}]
"#,
    );
}

#[test]
fn servicelb_lists_every_ready_node_and_can_be_disabled() {
    let k1s = K1s::start_with(&["--simulate-nodes", "2"]);
    let k = newest_kubectl();
    let addresses: BTreeSet<String> = eventually(WAIT, "two Ready nodes", || {
        let nodes = json(&k1s, &k, &["nodes"])?;
        let mut ips = BTreeSet::new();
        for n in nodes["items"].as_array()? {
            let ready = n["status"]["conditions"]
                .as_array()?
                .iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True");
            let ip = n["status"]["addresses"]
                .as_array()?
                .iter()
                .find(|a| a["type"] == "InternalIP")?["address"]
                .as_str()?
                .to_string();
            if ready {
                ips.insert(ip);
            }
        }
        (ips.len() == 2).then_some(ips)
    });
    sim_lb(&k1s, &k);
    eventually(WAIT, "both node addresses on the Service", || {
        let svc = json(&k1s, &k, &["svc", "lb"])?;
        let ips: BTreeSet<String> = svc["status"]["loadBalancer"]["ingress"]
            .as_array()?
            .iter()
            .filter_map(|i| i["ip"].as_str().map(String::from))
            .collect();
        (ips == addresses).then_some(())
    });

    let off = K1s::start_with(&["--simulate-nodes", "1", "--disable", "servicelb"]);
    eventually(WAIT, "a Ready node", || {
        let nodes = json(&off, &k, &["nodes"])?;
        nodes["items"]
            .as_array()?
            .iter()
            .any(|n| {
                n["status"]["conditions"].as_array().is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c["type"] == "Ready" && c["status"] == "True")
                })
            })
            .then_some(())
    });
    sim_lb(&off, &k);
    std::thread::sleep(Duration::from_secs(3));
    let svc = json(&off, &k, &["svc", "lb"]).expect("svc lb");
    assert!(
        svc["status"]["loadBalancer"]["ingress"].is_null(),
        "servicelb is disabled: {svc}"
    );
    let shown = off.kubectl(&k, &["get", "svc", "lb"]);
    assert!(shown.ok().contains("<pending>"), "{}", shown.stdout);
}

/// Lines of `cmd` output, or nothing when it cannot run (then the check is on what ran).
fn output(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd}: {e}"));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn shims_of(socket: &str) -> Vec<String> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        if let Ok(cmd) = std::fs::read(e.path().join("cmdline")) {
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            if cmd.contains("containerd-shim") && cmd.contains(socket) {
                found.push(cmd);
            }
        }
    }
    found
}

#[test]
fn killall_leaves_nothing_of_a_killed_server() {
    let mut flags = own_service_network();
    // No cluster DNS: its interface would be the only thing shared with other servers.
    flags.extend(["--disable".to_string(), "coredns".to_string()]);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let mut k1s = K1s::start_with_agent(&flags);
    let k = newest_kubectl();
    node_ready(&k1s, &k);
    apply(
        &k1s,
        &k,
        "sleeper",
        r#"apiVersion: v1
kind: Pod
metadata: {name: sleeper}
spec:
  containers:
  - name: sleeper
    image: busybox
    imagePullPolicy: IfNotPresent
    command: ["sleep", "3600"]
---
apiVersion: v1
kind: Service
metadata: {name: sleeper}
spec:
  type: NodePort
  selector: {app: sleeper}
  ports: [{port: 80}]
"#,
    );
    eventually(WAIT, "sleeper Running", || {
        let p = json(&k1s, &k, &["pod", "sleeper"])?;
        (p["status"]["phase"] == "Running").then_some(())
    });
    let bridge = k1s.bridge_name().expect("bridge");
    let data = std::fs::canonicalize(k1s.data_dir()).expect("data dir");
    let socket = data
        .join("agent/containerd/containerd.sock")
        .to_string_lossy()
        .into_owned();
    let proxy_table = format!("{bridge}-proxy");
    eventually(Duration::from_secs(30), "the proxy's table", || {
        output("nft", &["list", "tables", "ip"])
            .contains(&format!("table ip {proxy_table}\n"))
            .then_some(())
    });
    assert!(!shims_of(&socket).is_empty(), "no shim for {socket}");
    let mounts = || {
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(&*data.to_string_lossy()))
            .map(String::from)
            .collect::<Vec<_>>()
    };
    assert!(
        mounts().iter().any(|l| l.contains(" nsfs ")),
        "no pinned namespace under {}",
        data.display()
    );

    k1s.kill();
    let killall = |what: &str| {
        let out = Command::new(k1s_binary())
            .args(["killall", "--data-dir"])
            .arg(&data)
            .args(["--bridge-name", &bridge, "--dns-interface", "k1sdnone"])
            .output()
            .unwrap_or_else(|e| panic!("cannot run k1s killall: {e}"));
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{what}: {text}");
        text
    };
    let said = killall("killall");
    for expected in [
        "containerd-shim".to_string(),
        "container process sleep".to_string(),
        "removed network namespace".to_string(),
        format!("deleted bridge {bridge}"),
        format!("deleted nftables table ip {bridge}\n"),
        format!("deleted nftables table ip {proxy_table}\n"),
    ] {
        assert!(said.contains(&expected), "no {expected:?} in:\n{said}");
    }
    assert!(shims_of(&socket).is_empty(), "{:?}", shims_of(&socket));
    assert!(mounts().is_empty(), "{:#?}", mounts());
    let links = output("ip", &["-o", "link", "show"]);
    assert!(!links.contains(&format!(" {bridge}:")), "{links}");
    assert!(
        !links.contains(&format!("master {bridge} ")),
        "a veth is left on {bridge}: {links}"
    );
    let tables = output("nft", &["list", "tables", "ip"]);
    assert!(
        !tables.contains(&format!("table ip {bridge}\n"))
            && !tables.contains(&format!("table ip {proxy_table}\n")),
        "{tables}"
    );
    // A second run finds nothing to do.
    let again = killall("killall again");
    assert!(again.trim().is_empty(), "{again}");
    let help = Command::new(k1s_binary())
        .args(["killall", "--help"])
        .output()
        .expect("killall --help");
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.contains("--bridge-name") && help.contains("k1s-proxy"),
        "{help}"
    );
}

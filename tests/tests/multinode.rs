//! A three-node cluster on one machine, as Pis on a LAN: a `k1s server` with its agent in
//! the host's network namespace and two `k1s agent` processes, each in a network namespace
//! of its own joined to a bridge by a veth pair, with its own data dir and embedded
//! containerd. The agents join with the server's token (CSR flow), the nodes get podCIDRs
//! and a vxlan overlay; a Deployment of 6 pods spreads over the 3 nodes; pods reach pods
//! and a ClusterIP Service on other nodes; `kubectl exec` reaches an agent's pod through the
//! server; a stopped agent's node goes NotReady and its pods are rescheduled elsewhere.
//!
//! Needs root, containerd, runc, nftables, iproute2 and nsenter (scripts/test installs them) and the
//! test images (scripts/build-test-images, run by the harness when missing).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use k1s_e2e::{K1s, eventually, k1s_binary, newest_kubectl, test_images};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(120);

fn random(modulo: u32) -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    (nanos ^ std::process::id().wrapping_mul(2_654_435_761)) % modulo
}

fn sh(args: &[&str]) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {args:?}: {e} (iproute2 is needed)"));
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The "LAN": a bridge on the host with the server's address, and one network namespace
/// per agent plugged into it. Removed on drop, with what the agents left.
struct Lan {
    tag: String,
    bridge: String,
    subnet: u32,
    namespaces: Vec<String>,
}

impl Lan {
    fn new() -> Lan {
        let tag = format!("{:04x}", random(0xffff));
        let lan = Lan {
            bridge: format!("k1sl{tag}"),
            subnet: 1 + random(250),
            tag,
            namespaces: Vec::new(),
        };
        sh(&["ip", "link", "add", &lan.bridge, "type", "bridge"]);
        sh(&[
            "ip",
            "addr",
            "add",
            &format!("{}/24", lan.ip(1)),
            "dev",
            &lan.bridge,
        ]);
        sh(&["ip", "link", "set", &lan.bridge, "up"]);
        lan
    }

    fn ip(&self, host: u32) -> String {
        format!("172.30.{}.{host}", self.subnet)
    }

    /// A namespace for host number `host` (2, 3, …) with its address and a default route.
    fn add_host(&mut self, host: u32) -> String {
        let ns = format!("k1sn{}-{host}", self.tag);
        let veth = format!("k1sv{}{host}", self.tag);
        sh(&["ip", "netns", "add", &ns]);
        self.namespaces.push(ns.clone());
        sh(&[
            "ip", "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &ns,
        ]);
        sh(&["ip", "link", "set", &veth, "master", &self.bridge, "up"]);
        let in_ns = |args: &[&str]| {
            let mut full = vec!["ip", "netns", "exec", &ns];
            full.extend_from_slice(args);
            sh(&full);
        };
        in_ns(&[
            "ip",
            "addr",
            "add",
            &format!("{}/24", self.ip(host)),
            "dev",
            "eth0",
        ]);
        in_ns(&["ip", "link", "set", "eth0", "up"]);
        in_ns(&["ip", "link", "set", "lo", "up"]);
        in_ns(&["ip", "route", "add", "default", "via", &self.ip(1)]);
        ns
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        for ns in &self.namespaces {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge])
            .status();
    }
}

/// A `k1s agent` in a namespace, killed and cleaned up (`k1s killall`) on drop.
struct Agent {
    child: Option<Child>,
    ns: String,
    data: PathBuf,
    log: PathBuf,
    bridge: String,
    name: String,
}

impl Agent {
    #[allow(clippy::too_many_arguments)]
    fn start(
        k1s: &K1s,
        ns: &str,
        name: &str,
        ip: &str,
        server: &str,
        token: &str,
        bridge: &str,
        extra: &[String],
    ) -> Agent {
        let data = k1s.dir().join(format!("agent-{name}"));
        let images = data.join("agent").join("images");
        std::fs::create_dir_all(&images).expect("agent images dir");
        for image in ["busybox.tar", "nginx.tar"] {
            std::fs::copy(test_images().join(image), images.join(image)).expect("copy test image");
        }
        let log = k1s.dir().join(format!("agent-{name}.log"));
        let file = std::fs::File::create(&log).expect("agent log");
        let err = file.try_clone().expect("agent log");
        let bin = k1s_binary();
        // nsenter enters the network namespace only: `ip netns exec` would also remount
        // /sys for it, hiding /sys/fs/cgroup from runc.
        let mut args: Vec<String> = vec![
            format!("--net=/run/netns/{ns}"),
            bin.to_string_lossy().into_owned(),
            "agent".into(),
            "--server".into(),
            server.into(),
            "--token".into(),
            token.into(),
            "--data-dir".into(),
            data.to_string_lossy().into_owned(),
            "--node-name".into(),
            name.into(),
            "--node-ip".into(),
            ip.into(),
            "--bridge-name".into(),
            bridge.into(),
            "--pod-log-dir".into(),
            k1s.dir()
                .join(format!("pod-logs-{name}"))
                .to_string_lossy()
                .into_owned(),
        ];
        args.extend(extra.iter().cloned());
        let child = Command::new("nsenter")
            .args(&args)
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(err)
            .spawn()
            .expect("cannot start k1s agent");
        Agent {
            child: Some(child),
            ns: ns.into(),
            data,
            log,
            bridge: bridge.into(),
            name: name.into(),
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Stops the agent with SIGTERM, as a powered-off Pi stops answering.
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // nsenter runs the agent in its own process (exec), so the pid is its.
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            for _ in 0..200 {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.stop();
        let _ = Command::new("nsenter")
            .arg(format!("--net=/run/netns/{}", self.ns))
            .arg(k1s_binary())
            .args(["killall", "--data-dir"])
            .arg(&self.data)
            .args(["--bridge-name", &self.bridge])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn json(k1s: &K1s, args: &[&str]) -> Value {
    let k = newest_kubectl();
    let r = k1s.kubectl(&k, args);
    serde_json::from_str(r.ok()).unwrap_or_else(|e| panic!("not JSON from {args:?}: {e}"))
}

/// Running pods of `app`: name → (node, pod IP).
fn running(k1s: &K1s, app: &str) -> Vec<(String, String, String)> {
    let pods = json(
        k1s,
        &["get", "pods", "-l", &format!("app={app}"), "-o", "json"],
    );
    pods["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .filter(|p| p["status"]["phase"] == "Running")
        .filter(|p| {
            p["status"]["containerStatuses"]
                .as_array()
                .is_some_and(|cs| cs.iter().all(|c| c["ready"] == true))
        })
        .filter_map(|p| {
            Some((
                p["metadata"]["name"].as_str()?.to_string(),
                p["spec"]["nodeName"].as_str()?.to_string(),
                p["status"]["podIP"].as_str()?.to_string(),
            ))
        })
        .collect()
}

/// Whether the node is Ready; `None` while it is not registered.
fn node_ready(k1s: &K1s, name: &str) -> Option<bool> {
    let r = k1s.kubectl(&newest_kubectl(), &["get", "node", name, "-o", "json"]);
    if r.code != 0 {
        return None;
    }
    let node: Value = serde_json::from_str(&r.stdout).ok()?;
    node["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Ready")
        .map(|c| c["status"] == "True")
}

#[test]
fn three_nodes_share_pods_services_and_failover() {
    let k = newest_kubectl();
    let mut lan = Lan::new();
    let server_ip = lan.ip(1);
    let vxlan_port = (20000 + random(20000)).to_string();
    let n = 200 + random(50);
    let service_cidr = format!("10.{n}.0.0/16");
    let k1s = K1s::start_with_agent_on(
        &server_ip,
        &[
            "--node-ip",
            &server_ip,
            "--vxlan-port",
            &vxlan_port,
            "--service-cidr",
            &service_cidr,
            "--cluster-dns",
            &format!("10.{n}.0.10"),
            "--dns-interface",
            &format!("k1sd{}", lan.tag),
        ],
    );
    let server_node = k1s.node_name().expect("server node name");
    let cluster_cidr = k1s.cluster_cidr().expect("cluster cidr");
    let token = std::fs::read_to_string(k1s.data_dir().join("server/token"))
        .expect("the server wrote its token");
    assert!(token.starts_with("K10"), "k3s's token format: {token}");
    let server_url = format!("https://{server_ip}:{}", k1s.port());
    let extra = vec![
        "--cluster-cidr".to_string(),
        cluster_cidr,
        "--vxlan-port".into(),
        vxlan_port.clone(),
        "--cluster-dns".into(),
        format!("10.{n}.0.10"),
    ];
    let mut agents = Vec::new();
    for host in [2, 3] {
        let ns = lan.add_host(host);
        let name = format!("pi-{}-{host}", lan.tag);
        agents.push(Agent::start(
            &k1s,
            &ns,
            &name,
            &lan.ip(host),
            &server_url,
            token.trim(),
            &format!("k1sb{}{host}", lan.tag),
            &extra,
        ));
    }
    let names: Vec<String> = std::iter::once(server_node.clone())
        .chain(agents.iter().map(|a| a.name.clone()))
        .collect();
    eventually(WAIT, "three Ready nodes", || {
        for a in agents.iter_mut() {
            if let Some(Ok(Some(status))) = a.child.as_mut().map(Child::try_wait) {
                panic!("agent {} exited with {status}:\n{}", a.name, a.log());
            }
        }
        names
            .iter()
            .all(|n| node_ready(&k1s, n) == Some(true))
            .then_some(())
    });
    // The agents authenticated as their nodes, with certificates the server issued.
    let csrs = json(&k1s, &["get", "csr", "-o", "json"]);
    let signers: BTreeSet<String> = csrs["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| !c["status"]["certificate"].is_null())
        .filter_map(|c| c["spec"]["signerName"].as_str().map(str::to_string))
        .collect();
    for s in [
        "kubernetes.io/kube-apiserver-client-kubelet",
        "kubernetes.io/kubelet-serving",
    ] {
        assert!(signers.contains(s), "no issued {s} request: {csrs}");
    }
    for a in &agents {
        let node = json(&k1s, &["get", "node", &a.name, "-o", "json"]);
        assert!(
            node["spec"]["podCIDR"].as_str().is_some(),
            "no podCIDR: {node}"
        );
    }

    let deploy = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 6
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 1
      topologySpreadConstraints:
      - {maxSkew: 1, topologyKey: kubernetes.io/hostname, whenUnsatisfiable: ScheduleAnyway, labelSelector: {matchLabels: {app: web}}}
      tolerations:
      - {key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute, tolerationSeconds: 2}
      - {key: node.kubernetes.io/not-ready, operator: Exists, effect: NoExecute, tolerationSeconds: 2}
      containers:
      - {name: nginx, image: docker.io/library/nginx:latest, imagePullPolicy: Never, ports: [{containerPort: 80}]}
---
apiVersion: v1
kind: Pod
metadata: {name: target, labels: {role: target}}
spec:
  nodeName: SERVER_NODE
  terminationGracePeriodSeconds: 1
  containers:
  - {name: nginx, image: docker.io/library/nginx:latest, imagePullPolicy: Never}
---
apiVersion: v1
kind: Service
metadata: {name: target}
spec:
  selector: {role: target}
  ports: [{port: 8080, targetPort: 80}]
"#
    .replace("SERVER_NODE", &server_node);
    let file = k1s.write_file("web.yaml", &deploy);
    k1s.kubectl(&k, &["apply", "-f", &file.to_string_lossy()])
        .ok();
    let pods = eventually(WAIT, "6 ready pods over the 3 nodes", || {
        let pods = running(&k1s, "web");
        let nodes: BTreeSet<&str> = pods.iter().map(|(_, n, _)| n.as_str()).collect();
        (pods.len() == 6 && nodes.len() == 3).then_some(pods)
    });

    // Every pod reaches a pod on each other node, across the overlay; `kubectl exec` to
    // agents' pods goes through the server to their kubelets.
    for (name, node, _) in &pods {
        let other = pods
            .iter()
            .filter(|(_, n, _)| n != node)
            .map(|(_, _, ip)| ip.clone())
            .collect::<BTreeSet<_>>();
        for ip in other.iter().take(2) {
            let r = k1s.kubectl(
                &k,
                &[
                    "exec",
                    name,
                    "--",
                    // busybox wget -T crashes (exit 139) in the test image: timeout instead.
                    "timeout",
                    "5",
                    "wget",
                    "-qO-",
                    &format!("http://{ip}/"),
                ],
            );
            assert!(
                r.code == 0 && r.stdout.contains("nginx"),
                "{name} on {node} cannot reach {ip}: {r:?}"
            );
        }
    }
    // The Service's only endpoint is on the server node; agents' pods reach it by ClusterIP.
    let svc = json(&k1s, &["get", "service", "target", "-o", "json"]);
    let cluster_ip = svc["spec"]["clusterIP"]
        .as_str()
        .expect("clusterIP")
        .to_string();
    eventually(WAIT, "the target pod running", || {
        let pod = json(&k1s, &["get", "pod", "target", "-o", "json"]);
        (pod["status"]["phase"] == "Running").then_some(())
    });
    for a in &agents {
        let (client, _, _) = pods
            .iter()
            .find(|(_, n, _)| *n == a.name)
            .expect("a pod on each agent");
        eventually(Duration::from_secs(30), "the Service across nodes", || {
            let r = k1s.kubectl(
                &k,
                &[
                    "exec",
                    client,
                    "--",
                    "timeout",
                    "5",
                    "wget",
                    "-qO-",
                    &format!("http://{cluster_ip}:8080/"),
                ],
            );
            (r.code == 0 && r.stdout.contains("nginx")).then_some(())
        });
    }

    // A Pi goes away: its node goes NotReady and its pods come back on the others.
    let gone = agents[1].name.clone();
    agents[1].stop();
    eventually(
        Duration::from_secs(90),
        "the stopped agent's node NotReady",
        || (node_ready(&k1s, &gone) != Some(true)).then_some(()),
    );
    // Eviction after the 2 s toleration, then new pods started on the other two nodes: a
    // minute alone, but the full suite's load on 2 cores has taken more than 90 s.
    eventually(
        Duration::from_secs(180),
        "6 ready pods off the stopped node",
        || {
            let pods = running(&k1s, "web");
            let on_gone = json(
                &k1s,
                &[
                    "get",
                    "pods",
                    "-l",
                    "app=web",
                    "--field-selector",
                    &format!("spec.nodeName={gone}"),
                    "-o",
                    "json",
                ],
            );
            let left = on_gone["items"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
                        .count()
                })
                .unwrap_or(0);
            (pods.len() == 6 && pods.iter().all(|(_, n, _)| *n != gone) && left == 0).then_some(())
        },
    );
    drop(agents);
    drop(k1s);
    drop(lan);
}

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
use std::process::Child;
use std::time::Duration;

use k1s_e2e::lan::{Agent, Lan, node_ready, random};
use k1s_e2e::{K1s, eventually, newest_kubectl};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(120);

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

#[test]
fn three_nodes_share_pods_services_and_failover() {
    let k = newest_kubectl();
    let mut lan = Lan::create();
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

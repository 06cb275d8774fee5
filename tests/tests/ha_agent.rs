//! An agent fails over between HA servers: two `k1s server --disable-agent` processes on
//! the embedded etcd (`--cluster-init` and a joining one) listen on the host's address of
//! a bridge, on ports of their own; a `k1s agent` in a network namespace joins through the
//! first. Its API server load balancer learns both servers from the `kubernetes`
//! Endpoints; when the first server is killed, the agent's clients go on through the
//! second: the node keeps renewing its Lease and stays Ready, and a pod created afterwards
//! is scheduled to it and runs.
//!
//! Needs root, containerd, runc, nftables, iproute2, nsenter, Debian's etcd-server and the
//! test images (as tests/tests/multinode.rs and ha_embedded.rs).

use std::path::Path;
use std::time::Duration;

use k1s_e2e::lan::{Agent, Lan, node_ready, random};
use k1s_e2e::{EtcdReaper, K1s, eventually, free_port, newest_kubectl};

const WAIT: Duration = Duration::from_secs(120);

fn server_flags(name: &str, ip: &str) -> Vec<String> {
    vec![
        "--node-name".into(),
        name.into(),
        "--node-ip".into(),
        ip.into(),
        "--etcd-client-port".into(),
        free_port().to_string(),
        "--etcd-peer-port".into(),
        free_port().to_string(),
    ]
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// The node of the Running pods of Deployment `app`.
fn running_on(k1s: &K1s, app: &str) -> Vec<String> {
    let r = k1s.kubectl(
        &newest_kubectl(),
        &["get", "pods", "-l", &format!("app={app}"), "-o", "json"],
    );
    let Ok(pods) = serde_json::from_str::<serde_json::Value>(&r.stdout) else {
        return Vec::new();
    };
    pods["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["status"]["phase"] == "Running")
        .filter_map(|p| p["spec"]["nodeName"].as_str().map(str::to_string))
        .collect()
}

fn deployment(name: &str) -> String {
    format!(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - {{name: nginx, image: docker.io/library/nginx:latest, imagePullPolicy: Never}}
"#
    )
}

fn renew_time(k1s: &K1s, node: &str) -> String {
    k1s.kubectl(
        &newest_kubectl(),
        &[
            "get",
            "lease",
            "-n",
            "kube-node-lease",
            node,
            "-o",
            "jsonpath={.spec.renewTime}",
        ],
    )
    .stdout
}

#[test]
fn an_agent_fails_over_to_another_server() {
    assert!(
        Path::new("/usr/bin/etcd").is_file(),
        "/usr/bin/etcd is missing: apt-get install etcd-server"
    );
    let k = newest_kubectl();
    let mut lan = Lan::create();
    let host_ip = lan.ip(1);
    let tag = lan.tag.clone();

    let mut a_args = vec!["--cluster-init".to_string()];
    a_args.extend(server_flags(&format!("fo-a-{tag}"), &host_ip));
    let mut a = K1s::start_on(&host_ip, &strs(&a_args));
    let mut reaper = EtcdReaper(vec![a.data_dir().to_path_buf()]);
    let token = std::fs::read_to_string(a.data_dir().join("server/token"))
        .unwrap_or_else(|e| panic!("the first server's token: {e}"));
    let token = token.trim().to_string();
    let a_url = a.url();
    let mut b_args = vec![
        "--server".to_string(),
        a_url.clone(),
        "--token".into(),
        token.clone(),
    ];
    b_args.extend(server_flags(&format!("fo-b-{tag}"), &host_ip));
    let mut b = K1s::start_on(&host_ip, &strs(&b_args));
    reaper.0.push(b.data_dir().to_path_buf());
    let a_addr = format!("{host_ip}:{}", a.port());
    let b_addr = format!("{host_ip}:{}", b.port());

    let ns = lan.add_host(2);
    let name = format!("fo-agent-{tag}");
    let vxlan_port = (20000 + random(20000)).to_string();
    let mut agent = Agent::start(
        &a,
        &ns,
        &name,
        &lan.ip(2),
        &a_url,
        &token,
        &format!("k1sb{tag}2"),
        &["--vxlan-port".to_string(), vxlan_port],
    );
    eventually(WAIT, "the agent's node Ready", || {
        if let Some(Ok(Some(status))) = agent.child.as_mut().map(|c| c.try_wait()) {
            panic!("the agent exited with {status}:\n{}", agent.log());
        }
        (node_ready(&b, &name) == Some(true)).then_some(())
    });
    // Its clients go through the load balancer, which learned both servers.
    let kubeconfig = std::fs::read_to_string(agent.data.join("agent/kubelet.kubeconfig"))
        .unwrap_or_else(|e| panic!("kubelet.kubeconfig: {e}"));
    assert!(
        kubeconfig.contains("server: https://127.0.0.1:6444"),
        "{kubeconfig}"
    );
    let lb_file = agent.data.join("agent/etc/k1s-agent-load-balancer.json");
    eventually(
        Duration::from_secs(60),
        "both servers in the agent's list",
        || {
            let saved = std::fs::read_to_string(&lb_file).unwrap_or_default();
            (saved.contains(&a_addr) && saved.contains(&b_addr)).then_some(())
        },
    );

    let file = b.write_file("before.yaml", &deployment("before"));
    b.kubectl(&k, &["apply", "-f", &file.to_string_lossy()])
        .ok();
    eventually(WAIT, "a pod running on the agent", || {
        (running_on(&b, "before") == vec![name.clone()]).then_some(())
    });

    // The server the agent joined through dies. Its etcd member (a child SIGKILL does not
    // stop) keeps the two-member etcd's quorum: this is the API server going away.
    a.kill();
    let renewed_before = renew_time(&b, &name);
    assert!(!renewed_before.is_empty(), "no node Lease");
    eventually(
        Duration::from_secs(90),
        "the agent's load balancer on the other server",
        || {
            agent
                .log()
                .lines()
                .any(|l| l.contains("now uses this server") && l.contains(&b_addr))
                .then_some(())
        },
    );
    // Heartbeats go through the second server.
    eventually(Duration::from_secs(60), "the node Lease renewed", || {
        let now = renew_time(&b, &name);
        (!now.is_empty() && now != renewed_before).then_some(())
    });
    assert_eq!(node_ready(&b, &name), Some(true), "{}", agent.log());
    // A new pod is scheduled (by whichever server leads now) and run by the agent.
    let file = b.write_file("after.yaml", &deployment("after"));
    b.kubectl(&k, &["apply", "-f", &file.to_string_lossy()])
        .ok();
    eventually(WAIT, "a pod created after the failover running", || {
        (running_on(&b, "after") == vec![name.clone()]).then_some(())
    });
    assert_eq!(node_ready(&b, &name), Some(true), "{}", agent.log());

    drop(agent);
    b.stop();
    drop(reaper);
    drop(lan);
}

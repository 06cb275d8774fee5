//! NetworkPolicy enforcement end to end: one `k1s server` with its agent runs an nginx and
//! busybox clients in two namespaces; policies then deny all ingress to the nginx, re-open
//! it for a labelled client (by a named port), for a namespace picked by its labels and for
//! an ipBlock, deny a client's egress (but DNS, by the usual kube-dns rule), and removing them restores traffic. The node itself keeps
//! reaching the pod (kubelet probes) throughout.
//!
//! Needs root, containerd, runc, nft and br_netfilter (scripts/test installs them) and the
//! test images (scripts/build-test-images, run by the harness when missing).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use k1s_e2e::{K1s, Kubectl, eventually, newest_kubectl};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(90);
/// Long enough for a sync (100 ms batches) and several 3 s attempts.
const POLICY_WAIT: Duration = Duration::from_secs(30);

fn apply(k1s: &K1s, k: &Kubectl, name: &str, manifest: &str) {
    let file = k1s.write_file(&format!("{name}.yaml"), manifest);
    let path = file.to_string_lossy().into_owned();
    k1s.kubectl(k, &["apply", "-f", &path]).ok();
}

fn ready_pod_ip(k1s: &K1s, k: &Kubectl, ns: &str, name: &str) -> String {
    let pod = eventually(WAIT, &format!("{ns}/{name} Running and Ready"), || {
        let r = k1s.kubectl(k, &["get", "pod", "-n", ns, name, "-o", "json"]);
        let p: Value = serde_json::from_str(&r.stdout).ok()?;
        (p["status"]["phase"] == "Running"
            && p["status"]["conditions"].as_array().is_some_and(|cs| {
                cs.iter()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            }))
        .then_some(p)
    });
    pod["status"]["podIP"].as_str().expect("podIP").to_string()
}

/// Whether `ns/pod` gets the nginx page at `url` within 3 s (busybox's own `wget -T`
/// crashes in Debian's build, so `timeout` bounds it).
fn fetches(k1s: &K1s, k: &Kubectl, ns: &str, pod: &str, url: &str) -> bool {
    let out = k1s.kubectl(
        k,
        &[
            "exec", "-n", ns, pod, "--", "timeout", "3", "wget", "-qO-", url,
        ],
    );
    out.code == 0 && out.stdout.to_lowercase().contains("nginx")
}

#[track_caller]
fn until_reachable(k1s: &K1s, k: &Kubectl, ns: &str, pod: &str, url: &str, yes: bool) {
    let what = format!(
        "{ns}/{pod} {} {url}",
        if yes { "reaches" } else { "is blocked from" }
    );
    eventually(POLICY_WAIT, &what, || {
        (fetches(k1s, k, ns, pod, url) == yes).then_some(())
    });
}

/// The page straight from the node (no pod network namespace in between).
fn host_fetches(ip: &str) -> bool {
    let Ok(addr) = format!("{ip}:80").parse() else {
        return false;
    };
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET / HTTP/1.0\r\nHost: web\r\n\r\n").is_err() {
        return false;
    }
    let mut body = String::new();
    let _ = s.read_to_string(&mut body);
    body.contains("200 OK")
}

fn sleeper(ns: &str, name: &str, labels: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: {name}, namespace: {ns}, labels: {labels}}}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: sh
    image: busybox
    imagePullPolicy: IfNotPresent
    command: ["sleep", "3600"]
"#
    )
}

#[test]
fn network_policies_filter_pod_traffic() {
    let k1s = K1s::start_with_agent(&[]);
    let k = newest_kubectl();
    let tag = format!("{:x}", std::process::id());
    let (a, b) = (format!("np-a-{tag}"), format!("np-b-{tag}"));
    apply(
        &k1s,
        &k,
        "namespaces",
        &format!(
            r#"apiVersion: v1
kind: Namespace
metadata: {{name: {a}}}
---
apiVersion: v1
kind: Namespace
metadata: {{name: {b}, labels: {{team: friends}}}}
"#
        ),
    );
    apply(
        &k1s,
        &k,
        "pods",
        &format!(
            r#"apiVersion: v1
kind: Pod
metadata: {{name: web, namespace: {a}, labels: {{app: web}}}}
spec:
  containers:
  - name: nginx
    image: nginx:latest
    imagePullPolicy: IfNotPresent
    ports: [{{name: http, containerPort: 80}}]
    readinessProbe:
      httpGet: {{path: /, port: 80}}
      periodSeconds: 1
---
{}---
{}---
{}"#,
            sleeper(&a, "client", "{role: client}"),
            sleeper(&a, "stranger", "{role: none}"),
            sleeper(&b, "visitor", "{}"),
        ),
    );
    let ip = ready_pod_ip(&k1s, &k, &a, "web");
    for (ns, pod) in [(&a, "client"), (&b, "visitor")] {
        ready_pod_ip(&k1s, &k, ns, pod);
    }
    let stranger_ip = ready_pod_ip(&k1s, &k, &a, "stranger");
    let url = format!("http://{ip}/");
    // Without policies everyone gets through.
    for (ns, pod) in [(&a, "client"), (&a, "stranger"), (&b, "visitor")] {
        until_reachable(&k1s, &k, ns, pod, &url, true);
    }

    // Deny all ingress to web.
    apply(
        &k1s,
        &k,
        "deny",
        &format!(
            r#"apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {{name: deny-web, namespace: {a}}}
spec:
  podSelector: {{matchLabels: {{app: web}}}}
  policyTypes: [Ingress]
"#
        ),
    );
    until_reachable(&k1s, &k, &a, "client", &url, false);
    assert!(!fetches(&k1s, &k, &a, "stranger", &url));
    assert!(!fetches(&k1s, &k, &b, "visitor", &url));
    // The node still reaches it (the kubelet's probes keep it Ready).
    assert!(host_fetches(&ip), "the node is cut off from its pod");
    ready_pod_ip(&k1s, &k, &a, "web");

    // Re-open it for pods labelled role=client (by the named port) only.
    apply(
        &k1s,
        &k,
        "allow-client",
        &format!(
            r#"apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {{name: allow-client, namespace: {a}}}
spec:
  podSelector: {{matchLabels: {{app: web}}}}
  ingress:
  - from: [{{podSelector: {{matchLabels: {{role: client}}}}}}]
    ports: [{{port: http}}]
"#
        ),
    );
    until_reachable(&k1s, &k, &a, "client", &url, true);
    assert!(!fetches(&k1s, &k, &a, "stranger", &url));
    assert!(!fetches(&k1s, &k, &b, "visitor", &url));

    // And for the namespace labelled team=friends.
    apply(
        &k1s,
        &k,
        "allow-friends",
        &format!(
            r#"apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {{name: allow-friends, namespace: {a}}}
spec:
  podSelector: {{matchLabels: {{app: web}}}}
  ingress:
  - from: [{{namespaceSelector: {{matchLabels: {{team: friends}}}}}}]
    ports: [{{protocol: TCP, port: 80}}]
"#
        ),
    );
    until_reachable(&k1s, &k, &b, "visitor", &url, true);
    assert!(!fetches(&k1s, &k, &a, "stranger", &url));
    assert!(fetches(&k1s, &k, &a, "client", &url));

    // And for one address, by ipBlock.
    apply(
        &k1s,
        &k,
        "allow-block",
        &format!(
            r#"apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {{name: allow-block, namespace: {a}}}
spec:
  podSelector: {{matchLabels: {{app: web}}}}
  ingress:
  - from: [{{ipBlock: {{cidr: {stranger_ip}/32}}}}]
"#
        ),
    );
    until_reachable(&k1s, &k, &a, "stranger", &url, true);

    // Deny the client's egress: the ingress allow no longer helps it.
    apply(
        &k1s,
        &k,
        "deny-egress",
        &format!(
            r#"apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {{name: client-no-egress, namespace: {a}}}
spec:
  podSelector: {{matchLabels: {{role: client}}}}
  policyTypes: [Egress]
"#
        ),
    );
    until_reachable(&k1s, &k, &a, "client", &url, false);
    assert!(fetches(&k1s, &k, &b, "visitor", &url));
    // The usual "allow DNS" egress rule reaches the built-in cluster DNS (a kube-dns peer),
    // and nothing else.
    let resolves = || {
        let out = k1s.kubectl(
            &k,
            &[
                "exec",
                "-n",
                &a,
                "client",
                "--",
                "timeout",
                "3",
                "nslookup",
                "kube-dns.kube-system.svc.cluster.local",
            ],
        );
        out.code == 0
            && out
                .stdout
                .split("Name:")
                .nth(1)
                .is_some_and(|a| a.contains("10.43.0.10"))
    };
    assert!(!resolves(), "DNS answered through a deny-all egress policy");
    apply(
        &k1s,
        &k,
        "allow-dns",
        &format!(
            r#"apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {{name: client-dns, namespace: {a}}}
spec:
  podSelector: {{matchLabels: {{role: client}}}}
  policyTypes: [Egress]
  egress:
  - to:
    - namespaceSelector: {{matchLabels: {{kubernetes.io/metadata.name: kube-system}}}}
      podSelector: {{matchLabels: {{k8s-app: kube-dns}}}}
    ports: [{{protocol: UDP, port: 53}}, {{protocol: TCP, port: 53}}]
"#
        ),
    );
    eventually(
        POLICY_WAIT,
        "the client resolves through the allow-DNS rule",
        || resolves().then_some(()),
    );
    assert!(!fetches(&k1s, &k, &a, "client", &url));

    // Removing the policies restores traffic for everyone.
    k1s.kubectl(&k, &["delete", "networkpolicy", "--all", "-n", &a])
        .ok();
    for (ns, pod) in [(&a, "client"), (&a, "stranger"), (&b, "visitor")] {
        until_reachable(&k1s, &k, ns, pod, &url, true);
    }
}

//! Issue 9, nodes: `k1s server --simulate-nodes 3` registers three Ready simulated nodes
//! that run pods bound to them, finish deletions, and are cordoned and uncordoned with
//! kubectl; `k1s simulate nodes` adds nodes to a running cluster. One server for every
//! case, a namespace per case.

use std::process::{Command, Stdio};
use std::time::Duration;

use k1s_e2e::{K1s, eventually, k1s_binary, newest_kubectl};

const WAIT: Duration = Duration::from_secs(60);

#[test]
fn simulated_nodes_run_pods_and_are_cordoned_with_kubectl() {
    let k1s = K1s::start_with(&["--simulate-nodes", "3"]);
    let k = newest_kubectl();

    // Three Ready nodes, with upstream's columns.
    let table = eventually(WAIT, "3 Ready nodes", || {
        let out = k1s.kubectl(&k, &["get", "nodes"]);
        let ready = out
            .stdout
            .lines()
            .filter(|l| l.starts_with("sim-node-") && l.split_whitespace().nth(1) == Some("Ready"))
            .count();
        (out.code == 0 && ready == 3).then_some(out.stdout)
    });
    let header: Vec<&str> = table
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        ["NAME", "STATUS", "ROLES", "AGE", "VERSION"],
        "{table}"
    );
    let wide = k1s.kubectl(&k, &["get", "node", "sim-node-0", "-o", "wide"]);
    let wide = wide.ok();
    for column in [
        "INTERNAL-IP",
        "OS-IMAGE",
        "KERNEL-VERSION",
        "CONTAINER-RUNTIME",
    ] {
        assert!(wide.contains(column), "{wide}");
    }
    assert!(wide.contains("simulated://"), "{wide}");
    let leases = k1s.kubectl_in(&k, "kube-node-lease", &["get", "leases", "-o", "name"]);
    assert_eq!(leases.ok().lines().count(), 3, "{}", leases.stdout);

    // A pod bound to a node by hand runs there: no scheduler needed.
    k1s.kubectl(&k, &["create", "namespace", "sim-pods"]).ok();
    let manifest = k1s.write_file(
        "pod.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  namespace: sim-pods\nspec:\n  nodeName: sim-node-0\n  initContainers:\n  - name: init\n    image: busybox\n  containers:\n  - name: web\n    image: nginx\n",
    );
    let path = manifest.to_string_lossy().to_string();
    k1s.kubectl(&k, &["apply", "-f", &path]).ok();
    k1s.kubectl_in(
        &k,
        "sim-pods",
        &["wait", "--for=condition=Ready", "pod/web", "--timeout=60s"],
    )
    .ok();
    let row = k1s.kubectl_in(&k, "sim-pods", &["get", "pod", "web", "--no-headers"]);
    let cols: Vec<&str> = row.ok().split_whitespace().collect();
    assert_eq!(&cols[..4], ["web", "1/1", "Running", "0"], "{}", row.stdout);
    let fields = k1s.kubectl_in(
        &k,
        "sim-pods",
        &[
            "get",
            "pod",
            "web",
            "-o",
            "jsonpath={.status.hostIP} {.status.podIP} {.status.initContainerStatuses[0].state.terminated.reason} {.spec.tolerations[*].key}",
        ],
    );
    let fields = fields.ok();
    assert!(fields.starts_with("172.16.0.1 10.42.0."), "{fields}");
    assert!(fields.contains("Completed"), "{fields}");
    // DefaultTolerationSeconds admission.
    assert!(
        fields.contains("node.kubernetes.io/not-ready node.kubernetes.io/unreachable"),
        "{fields}"
    );

    // Deletion completes: the node finishes the pod after its (capped) grace period.
    k1s.kubectl_in(&k, "sim-pods", &["delete", "pod", "web", "--timeout=60s"])
        .ok();
    let left = k1s.kubectl_in(&k, "sim-pods", &["get", "pods", "-o", "name"]);
    assert_eq!(left.ok().trim(), "");

    // Cordon adds the unschedulable taint; uncordon removes it.
    k1s.kubectl(&k, &["cordon", "sim-node-1"]).ok();
    let taints = |k1s: &K1s| {
        k1s.kubectl(
            &k,
            &[
                "get",
                "node",
                "sim-node-1",
                "-o",
                "jsonpath={.spec.taints[*].key}",
            ],
        )
        .stdout
    };
    eventually(WAIT, "the unschedulable taint", || {
        taints(&k1s)
            .contains("node.kubernetes.io/unschedulable")
            .then_some(())
    });
    let status = k1s.kubectl(&k, &["get", "node", "sim-node-1", "--no-headers"]);
    assert!(
        status.ok().contains("Ready,SchedulingDisabled"),
        "{}",
        status.stdout
    );
    k1s.kubectl(&k, &["uncordon", "sim-node-1"]).ok();
    eventually(WAIT, "the unschedulable taint removed", || {
        (!taints(&k1s).contains("node.kubernetes.io/unschedulable")).then_some(())
    });

    // `k1s simulate nodes` adds nodes to a running cluster.
    let mut extra = Command::new(k1s_binary())
        .args([
            "simulate",
            "nodes",
            "2",
            "--name-prefix",
            "extra",
            "--kubeconfig",
        ])
        .arg(k1s.kubeconfig())
        .args(["--server", &k1s.url(), "--cluster-cidr", "10.99.0.0/16"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("k1s simulate nodes");
    eventually(WAIT, "2 extra Ready nodes", || {
        let out = k1s.kubectl(&k, &["get", "nodes", "--no-headers"]);
        let ready = out
            .stdout
            .lines()
            .filter(|l| l.starts_with("extra-") && l.split_whitespace().nth(1) == Some("Ready"))
            .count();
        (ready == 2).then_some(())
    });
    let _ = extra.kill();
    let _ = extra.wait();
}

//! Issue 9, the scheduler: against a real `k1s server`, driven by kubectl. Nodes are
//! Node objects applied with kubectl (their allocatable written through `/status`, as a
//! kubelet does). One server, one sequence: the cases share the nodes.

use std::time::Duration;

use k1s_e2e::{K1s, Kubectl, eventually, newest_kubectl};

const NS: &str = "sched";

fn apply(k1s: &K1s, k: &Kubectl, yaml: &str) {
    k1s.kubectl_with(k, &["apply", "-f", "-"], Some(yaml), &[])
        .ok();
}

fn node(k1s: &K1s, k: &Kubectl, name: &str, cpu: &str, spec: &str) {
    apply(
        k1s,
        k,
        &format!(
            "apiVersion: v1\nkind: Node\nmetadata:\n  name: {name}\n  labels:\n    kubernetes.io/hostname: {name}\nspec: {spec}\n"
        ),
    );
    let status = format!(
        r#"{{"status":{{"allocatable":{{"cpu":"{cpu}","memory":"8Gi","pods":"110"}},"capacity":{{"cpu":"{cpu}","memory":"8Gi","pods":"110"}}}}}}"#
    );
    k1s.kubectl(
        k,
        &[
            "patch",
            "node",
            name,
            "--subresource=status",
            "--type=merge",
            "-p",
            &status,
        ],
    )
    .ok();
}

fn pod(k1s: &K1s, k: &Kubectl, name: &str, cpu: &str, extra_spec: &str) {
    apply(
        k1s,
        k,
        &format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: {NS}\nspec:\n{extra_spec}  containers:\n  - name: c\n    image: busybox\n    resources:\n      requests:\n        cpu: {cpu}\n"
        ),
    );
}

fn field(k1s: &K1s, k: &Kubectl, pod: &str, path: &str) -> String {
    let out = k1s.kubectl_in(
        k,
        NS,
        &["get", "pod", pod, "-o", &format!("jsonpath={{{path}}}")],
    );
    if out.code == 0 {
        out.stdout.trim().to_string()
    } else {
        String::new()
    }
}

fn node_of(k1s: &K1s, k: &Kubectl, pod: &str) -> String {
    field(k1s, k, pod, ".spec.nodeName")
}

fn wait_bound(k1s: &K1s, k: &Kubectl, pod: &str) -> String {
    eventually(
        Duration::from_secs(30),
        &format!("{pod} to be bound"),
        || Some(node_of(k1s, k, pod)).filter(|n| !n.is_empty()),
    )
}

#[test]
fn pods_are_scheduled_as_upstream_schedules_them() {
    let k1s = K1s::start();
    let k = newest_kubectl();
    k1s.kubectl(&k, &["create", "namespace", NS]).ok();
    node(
        &k1s,
        &k,
        "cp",
        "4",
        "{taints: [{key: node-role.kubernetes.io/control-plane, effect: NoSchedule}]}",
    );
    node(&k1s, &k, "w1", "1", "{}");
    node(&k1s, &k, "w2", "1", "{}");

    // A pod that fits goes to a worker, with the Scheduled event and condition.
    pod(&k1s, &k, "small", "500m", "");
    let n = wait_bound(&k1s, &k, "small");
    assert!(n == "w1" || n == "w2", "{n}");
    assert_eq!(
        field(
            &k1s,
            &k,
            "small",
            ".status.conditions[?(@.type==\"PodScheduled\")].status"
        ),
        "True"
    );
    eventually(Duration::from_secs(30), "the Scheduled event", || {
        let out = k1s.kubectl_in(
            &k,
            NS,
            &[
                "get",
                "events",
                "--field-selector",
                "involvedObject.name=small,reason=Scheduled",
                "-o",
                "jsonpath={.items[*].message}",
            ],
        );
        out.stdout
            .contains(&format!("Successfully assigned {NS}/small to {n}"))
            .then_some(())
    });

    // A pod no node fits stays Pending, with upstream's reason.
    pod(&k1s, &k, "big", "2", "");
    let expected = "0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, 2 Insufficient cpu. preemption: 0/3 nodes are available: 1 Preemption is not helpful for scheduling, 2 No preemption victims found for incoming pod.";
    eventually(Duration::from_secs(30), "big to be unschedulable", || {
        (field(
            &k1s,
            &k,
            "big",
            ".status.conditions[?(@.type==\"PodScheduled\")].message",
        ) == expected)
            .then_some(())
    });
    assert_eq!(field(&k1s, &k, "big", ".status.phase"), "Pending");
    assert_eq!(
        field(
            &k1s,
            &k,
            "big",
            ".status.conditions[?(@.type==\"PodScheduled\")].reason"
        ),
        "Unschedulable"
    );
    eventually(
        Duration::from_secs(30),
        "FailedScheduling in describe",
        || {
            let out = k1s.kubectl_in(&k, NS, &["describe", "pod", "big"]);
            (out.stdout.contains("FailedScheduling") && out.stdout.contains("2 Insufficient cpu"))
                .then_some(())
        },
    );

    // Tolerations and a node selector take a pod to the control plane.
    pod(
        &k1s,
        &k,
        "on-cp",
        "100m",
        "  nodeSelector:\n    kubernetes.io/hostname: cp\n  tolerations:\n  - key: node-role.kubernetes.io/control-plane\n    operator: Exists\n",
    );
    assert_eq!(wait_bound(&k1s, &k, "on-cp"), "cp");

    // Required anti-affinity keeps two pods of a kind apart.
    for name in ["anti-a", "anti-b"] {
        apply(
            &k1s,
            &k,
            &format!(
                "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: {NS}\n  labels:\n    app: anti\nspec:\n  affinity:\n    podAntiAffinity:\n      requiredDuringSchedulingIgnoredDuringExecution:\n      - labelSelector:\n          matchLabels:\n            app: anti\n        topologyKey: kubernetes.io/hostname\n  containers:\n  - name: c\n    image: busybox\n"
            ),
        );
        wait_bound(&k1s, &k, name);
    }
    assert_ne!(node_of(&k1s, &k, "anti-a"), node_of(&k1s, &k, "anti-b"));

    // PriorityClasses set spec.priority at create.
    apply(
        &k1s,
        &k,
        "apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata:\n  name: high\nvalue: 1000\n",
    );
    pod(&k1s, &k, "important", "100m", "  priorityClassName: high\n");
    assert_eq!(field(&k1s, &k, "important", ".spec.priority"), "1000");
    wait_bound(&k1s, &k, "important");
    let out = k1s.kubectl_with(
        &k,
        &["apply", "-f", "-"],
        Some(&format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: nope\n  namespace: {NS}\nspec:\n  priorityClassName: missing\n  containers:\n  - name: c\n    image: busybox\n"
        )),
        &[],
    );
    assert!(
        out.fails()
            .contains("no PriorityClass with name missing was found"),
        "{}",
        out.stderr
    );

    // Another scheduler's pod is left alone; a Binding posted by hand binds it.
    pod(&k1s, &k, "mine", "100m", "  schedulerName: my-scheduler\n");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(node_of(&k1s, &k, "mine"), "");
    assert_eq!(field(&k1s, &k, "mine", ".status.conditions"), "");
    k1s.kubectl_with(
        &k,
        &["create", "-f", "-"],
        Some(&format!(
            "apiVersion: v1\nkind: Binding\nmetadata:\n  name: mine\n  namespace: {NS}\ntarget:\n  apiVersion: v1\n  kind: Node\n  name: w2\n"
        )),
        &[],
    );
    eventually(Duration::from_secs(10), "mine bound by hand", || {
        (node_of(&k1s, &k, "mine") == "w2").then_some(())
    });
    let again = k1s.kubectl_with(
        &k,
        &["create", "-f", "-"],
        Some(&format!(
            "apiVersion: v1\nkind: Binding\nmetadata:\n  name: mine\n  namespace: {NS}\ntarget:\n  name: w1\n"
        )),
        &[],
    );
    assert!(
        again
            .fails()
            .contains("pod mine is already assigned to node \"w2\""),
        "{}",
        again.stderr
    );

    // A pod whose claim does not exist fits no node, whatever the node.
    pod(
        &k1s,
        &k,
        "claims",
        "100m",
        "  volumes:\n  - name: data\n    persistentVolumeClaim:\n      claimName: nope\n",
    );
    eventually(
        Duration::from_secs(30),
        "claims to be unschedulable",
        || {
            (field(
            &k1s,
            &k,
            "claims",
            ".status.conditions[?(@.type==\"PodScheduled\")].message",
        ) == "0/3 nodes are available: persistentvolumeclaim \"nope\" not found. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.")
            .then_some(())
        },
    );

    // A node that fits arrives: the waiting pod is scheduled there.
    node(&k1s, &k, "w3", "4", "{}");
    assert_eq!(wait_bound(&k1s, &k, "big"), "w3");
}

#[test]
fn pods_run_on_simulated_nodes_once_scheduled() {
    let k1s = K1s::start_with(&["--simulate-nodes", "3"]);
    let k = newest_kubectl();
    k1s.kubectl(&k, &["create", "namespace", NS]).ok();
    eventually(Duration::from_secs(60), "3 Ready nodes", || {
        let out = k1s.kubectl(&k, &["get", "nodes", "--no-headers"]);
        (out.stdout.matches(" Ready ").count() == 3).then_some(())
    });
    for i in 0..6 {
        pod(&k1s, &k, &format!("sim-{i}"), "100m", "");
    }
    // Where each goes among equally free nodes is a tie broken at random, as upstream.
    for i in 0..6 {
        let name = format!("sim-{i}");
        let node = wait_bound(&k1s, &k, &name);
        assert!(node.starts_with("sim-node-"), "{node}");
        eventually(Duration::from_secs(30), &format!("{name} Running"), || {
            (field(&k1s, &k, &name, ".status.phase") == "Running").then_some(())
        });
    }
}

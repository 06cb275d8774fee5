//! NodeRestriction admission against a real `k1s server` through kubectl: requests made
//! as kubelet `a` (impersonated: `--as=system:node:a --as-group=system:nodes`, which
//! admission sees as the user, as upstream's does) may change only node `a`, not its
//! taints or role labels, only pods bound to `a`, and only its Lease in
//! `kube-node-lease`; the cluster admin is not restricted. One server, one test.

use std::time::Duration;

use k1s_e2e::{K1s, Kubectl, eventually, newest_kubectl};

const NS: &str = "noderestriction-e2e";

const OBJECTS: &str = r#"
apiVersion: v1
kind: Node
metadata: {name: a, labels: {kubernetes.io/hostname: a}}
spec:
  taints: [{key: e2e.k1s.io/tainted, value: "yes", effect: NoSchedule}]
---
apiVersion: v1
kind: Node
metadata: {name: b, labels: {kubernetes.io/hostname: b}}
---
apiVersion: v1
kind: Pod
metadata: {name: on-a, namespace: noderestriction-e2e}
spec:
  nodeName: a
  containers: [{name: c, image: busybox}]
---
apiVersion: v1
kind: Pod
metadata: {name: on-b, namespace: noderestriction-e2e}
spec:
  nodeName: b
  containers: [{name: c, image: busybox}]
"#;

const AS_NODE_A: [&str; 2] = ["--as=system:node:a", "--as-group=system:nodes"];

/// kubectl as kubelet `a`.
fn as_a(k1s: &K1s, k: &Kubectl, args: &[&str]) -> k1s_e2e::Run {
    let mut all: Vec<&str> = AS_NODE_A.to_vec();
    all.extend_from_slice(args);
    k1s.kubectl(k, &all)
}

#[track_caller]
fn refused(run: &k1s_e2e::Run, message: &str) {
    let err = run.fails();
    // `kubectl create -f` puts `error when creating "STDIN": ` before the message.
    assert!(
        err.contains("Error from server (Forbidden): ") && err.contains(message),
        "`{}`: want {message:?}, got {err}",
        run.command
    );
}

#[test]
fn kubelets_change_only_what_belongs_to_their_node() {
    let k1s = K1s::start();
    let k = newest_kubectl();
    k1s.kubectl(&k, &["create", "namespace", NS]).ok();
    // Pods need the namespace's default ServiceAccount (ServiceAccount admission).
    eventually(
        Duration::from_secs(30),
        "the default ServiceAccount",
        || (k1s.kubectl(&k, &["get", "sa", "default", "-n", NS]).code == 0).then_some(()),
    );
    k1s.kubectl_with(&k, &["apply", "-f", "-"], Some(OBJECTS), &[])
        .ok();

    // Nodes: its own only, without role labels or taint changes.
    refused(
        &as_a(&k1s, &k, &["label", "node", "b", "e2e.k1s.io/x=1"]),
        r#"nodes "b" is forbidden: node "a" is not allowed to modify node "b""#,
    );
    refused(
        &as_a(
            &k1s,
            &k,
            &["label", "node", "a", "node-role.kubernetes.io/worker=true"],
        ),
        r#"nodes "a" is forbidden: is not allowed to modify labels: node-role.kubernetes.io/worker"#,
    );
    refused(
        &as_a(
            &k1s,
            &k,
            &[
                "label",
                "node",
                "a",
                "x.node-restriction.kubernetes.io/pool=gold",
            ],
        ),
        r#"nodes "a" is forbidden: is not allowed to modify labels: x.node-restriction.kubernetes.io/pool"#,
    );
    refused(
        &as_a(&k1s, &k, &["taint", "node", "a", "e2e.k1s.io/tainted-"]),
        r#"nodes "a" is forbidden: node "a" is not allowed to modify taints"#,
    );
    as_a(
        &k1s,
        &k,
        &[
            "label",
            "node",
            "a",
            "e2e.k1s.io/free=1",
            "topology.kubernetes.io/zone=z1",
        ],
    )
    .ok();
    // The admin is not a node: nothing is restricted.
    k1s.kubectl(
        &k,
        &["label", "node", "b", "node-role.kubernetes.io/worker=true"],
    )
    .ok();

    // Pods: only mirror pods may be created, only its own deleted or evicted, and only
    // its own pods' status written.
    let ns = format!("--namespace={NS}");
    refused(
        &as_a(
            &k1s,
            &k,
            &[
                &ns,
                "run",
                "plain",
                "--image=busybox",
                "--overrides={\"spec\":{\"nodeName\":\"a\"}}",
            ],
        ),
        r#"pods "plain" is forbidden: pod does not have "kubernetes.io/config.mirror" annotation, node "a" can only create mirror pods"#,
    );
    // kubectl's `patch --subresource` reads pods/status first, which the Node authorizer
    // does not let a kubelet do: the status is written with a PUT, as kubelets do.
    let put_status = |pod: &str| {
        let out = k1s.kubectl(&k, &["get", "pod", pod, "-n", NS, "-o", "json"]);
        let mut obj: serde_json::Value = serde_json::from_str(out.ok()).expect("pod JSON");
        obj["status"]["message"] = serde_json::json!("written by node a");
        let path = k1s.write_file(&format!("{pod}-status.json"), &obj.to_string());
        as_a(
            &k1s,
            &k,
            &[
                "replace",
                "--raw",
                &format!("/api/v1/namespaces/{NS}/pods/{pod}/status"),
                "-f",
                path.to_str().unwrap_or_default(),
            ],
        )
    };
    refused(
        &put_status("on-b"),
        r#"pods "on-b" is forbidden: node "a" can only update pod status for pods with spec.nodeName set to itself"#,
    );
    put_status("on-a").ok();
    let eviction = format!(
        r#"{{"apiVersion":"policy/v1","kind":"Eviction","metadata":{{"name":"on-b","namespace":"{NS}"}}}}"#
    );
    let path = k1s.write_file("eviction.json", &eviction);
    let path = path.to_str().unwrap_or_default();
    refused(
        &as_a(
            &k1s,
            &k,
            &[
                "create",
                "--raw",
                &format!("/api/v1/namespaces/{NS}/pods/on-b/eviction"),
                "-f",
                path,
            ],
        ),
        r#"pods "on-b" is forbidden: node a can only evict pods with spec.nodeName set to itself"#,
    );
    refused(
        &as_a(&k1s, &k, &[&ns, "delete", "pod", "on-b", "--wait=false"]),
        r#"pods "on-b" is forbidden: node "a" can only delete pods with spec.nodeName set to itself"#,
    );
    as_a(&k1s, &k, &[&ns, "delete", "pod", "on-a", "--wait=false"]).ok();

    // Leases: its own, in kube-node-lease.
    let lease = |ns: &str, name: &str| {
        format!(
            "apiVersion: coordination.k8s.io/v1\nkind: Lease\nmetadata: {{name: {name}, namespace: {ns}}}\nspec: {{holderIdentity: {name}}}\n"
        )
    };
    let create_lease = |ns: &str, name: &str| {
        let mut args: Vec<&str> = AS_NODE_A.to_vec();
        args.extend_from_slice(&["create", "-f", "-"]);
        k1s.kubectl_with(&k, &args, Some(&lease(ns, name)), &[])
    };
    refused(
        &create_lease(NS, "a"),
        r#"leases.coordination.k8s.io "a" is forbidden: can only access leases in the "kube-node-lease" system namespace"#,
    );
    refused(
        &create_lease("kube-node-lease", "b"),
        r#"leases.coordination.k8s.io "b" is forbidden: can only access node lease with the same name as the requesting node"#,
    );
    create_lease("kube-node-lease", "a").ok();
}

//! Issue 9, policy controllers against a real `k1s server`, driven by kubectl: the
//! pods/eviction subresource honouring PodDisruptionBudgets and the disruption
//! controller's status, ResourceQuota usage and admission, the PV binder, and the
//! HorizontalPodAutoscaler's bounds and conditions. One server, one namespace per case.

use std::time::Duration;

use k1s_e2e::{K1s, Kubectl, eventually, newest_kubectl};

const WAIT: Duration = Duration::from_secs(60);

/// Columns of the line of `kubectl get` output that starts with `name`.
fn row(out: &str, name: &str) -> Vec<String> {
    out.lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default()
}

fn apply(k1s: &K1s, k: &Kubectl, ns: &str, manifest: &str) {
    k1s.kubectl_with(k, &["-n", ns, "apply", "-f", "-"], Some(manifest), &[])
        .ok();
}

/// A pod the kubelet would report Running and Ready (there is no kubelet here).
fn running_pod(k1s: &K1s, k: &Kubectl, ns: &str, name: &str) {
    apply(
        k1s,
        k,
        ns,
        &format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  labels:\n    app: web\nspec:\n  containers:\n  - name: c\n    image: nginx\n"
        ),
    );
    k1s.kubectl_in(
        k,
        ns,
        &[
            "patch",
            "pod",
            name,
            "--subresource=status",
            "--type=merge",
            "-p",
            r#"{"status":{"phase":"Running","conditions":[{"type":"Ready","status":"True"}]}}"#,
        ],
    )
    .ok();
}

fn evict(k1s: &K1s, k: &Kubectl, ns: &str, pod: &str) -> k1s_e2e::Run {
    let body = format!(
        r#"{{"apiVersion":"policy/v1","kind":"Eviction","metadata":{{"name":"{pod}","namespace":"{ns}"}}}}"#
    );
    let file = k1s.write_file(&format!("evict-{ns}-{pod}.json"), &body);
    let path = format!("/api/v1/namespaces/{ns}/pods/{pod}/eviction");
    k1s.kubectl(
        k,
        &["create", "--raw", &path, "-f", &file.to_string_lossy()],
    )
}

fn pdb_case(k1s: &K1s, k: &Kubectl) {
    let ns = "policy-pdb";
    k1s.kubectl(k, &["create", "namespace", ns]).ok();
    for i in 0..3 {
        running_pod(k1s, k, ns, &format!("web-{i}"));
    }
    k1s.kubectl_in(
        k,
        ns,
        &[
            "create",
            "pdb",
            "web",
            "--selector=app=web",
            "--min-available=2",
        ],
    )
    .ok();
    // NAME MIN-AVAILABLE MAX-UNAVAILABLE ALLOWED-DISRUPTIONS AGE
    eventually(WAIT, "pdb allows one disruption", || {
        let out = k1s.kubectl_in(k, ns, &["get", "pdb"]);
        let r = row(&out.stdout, "web");
        (r.get(1..4) == Some(&["2".to_string(), "N/A".into(), "1".into()][..])).then_some(())
    });
    let header = k1s.kubectl_in(k, ns, &["get", "pdb"]).ok().to_string();
    assert!(
        header.starts_with("NAME   MIN AVAILABLE   MAX UNAVAILABLE   ALLOWED DISRUPTIONS   AGE"),
        "{header}"
    );
    let out = evict(k1s, k, ns, "web-0");
    out.ok();
    let err = evict(k1s, k, ns, "web-1").fails().to_string();
    assert!(
        err.contains("Cannot evict pod as it would violate the pod's disruption budget."),
        "{err}"
    );
    eventually(WAIT, "web-0 gone, budget spent", || {
        let pods = k1s.kubectl_in(k, ns, &["get", "pods", "-o", "name"]);
        let out = k1s.kubectl_in(k, ns, &["get", "pdb"]);
        let r = row(&out.stdout, "web");
        (!pods.stdout.contains("pod/web-0") && r.get(3).map(String::as_str) == Some("0"))
            .then_some(())
    });
    // The eviction's own status write (disruptedPods, no disruptions left) may come
    // before the controller's recount of the pods that remain.
    eventually(WAIT, "the budget recounted without web-0", || {
        let cond = k1s.kubectl_in(
            k,
            ns,
            &[
                "get",
                "pdb",
                "web",
                "-o",
                "jsonpath={.status.conditions[0].reason} {.status.currentHealthy}/{.status.desiredHealthy}/{.status.expectedPods}",
            ],
        );
        (cond.stdout == "InsufficientPods 2/2/2").then_some(())
    });
}

fn quota_case(k1s: &K1s, k: &Kubectl) {
    let ns = "policy-quota";
    k1s.kubectl(k, &["create", "namespace", ns]).ok();
    k1s.kubectl_in(
        k,
        ns,
        &[
            "create",
            "quota",
            "q",
            "--hard=pods=2,requests.cpu=1,services=1",
        ],
    )
    .ok();
    let pod = |name: &str, cpu: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  containers:\n  - name: c\n    image: nginx\n    resources:\n      requests:\n        cpu: {cpu}\n"
        )
    };
    eventually(WAIT, "quota counted", || {
        let d = k1s.kubectl_in(k, ns, &["describe", "quota", "q"]);
        d.stdout.contains("pods          0     2").then_some(())
    });
    apply(k1s, k, ns, &pod("a", "300m"));
    apply(k1s, k, ns, &pod("b", "300m"));
    let err = k1s
        .kubectl_with(
            k,
            &["-n", ns, "apply", "-f", "-"],
            Some(&pod("c", "100m")),
            &[],
        )
        .fails()
        .to_string();
    assert!(
        err.contains(
            "pods \"c\" is forbidden: exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2"
        ),
        "{err}"
    );
    let described = eventually(WAIT, "quota usage", || {
        let d = k1s.kubectl_in(k, ns, &["describe", "quota", "q"]);
        d.stdout
            .contains("requests.cpu  600m  1")
            .then_some(d.stdout)
    });
    assert!(
        described.contains("Resource      Used  Hard"),
        "{described}"
    );
    assert!(described.contains("pods          2     2"), "{described}");
    assert!(described.contains("services      0     1"), "{described}");
    k1s.kubectl_in(
        k,
        ns,
        &["delete", "pod", "a", "--grace-period=0", "--force"],
    );
    eventually(WAIT, "usage after delete", || {
        let d = k1s.kubectl_in(k, ns, &["describe", "quota", "q"]);
        d.stdout.contains("pods          1     2").then_some(())
    });
}

fn pv_case(k1s: &K1s, k: &Kubectl) {
    let ns = "policy-pv";
    k1s.kubectl(k, &["create", "namespace", ns]).ok();
    let pv = |name: &str, size: &str| {
        format!(
            "apiVersion: v1\nkind: PersistentVolume\nmetadata:\n  name: {name}\nspec:\n  capacity:\n    storage: {size}\n  accessModes: [ReadWriteOnce]\n  storageClassName: manual\n  hostPath:\n    path: /tmp/{name}\n"
        )
    };
    apply(k1s, k, ns, &pv("policy-pv-big", "5Gi"));
    apply(k1s, k, ns, &pv("policy-pv-fit", "1Gi"));
    apply(
        k1s,
        k,
        ns,
        "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: data\nspec:\n  accessModes: [ReadWriteOnce]\n  storageClassName: manual\n  resources:\n    requests:\n      storage: 500Mi\n",
    );
    eventually(WAIT, "claim bound", || {
        let out = k1s.kubectl_in(k, ns, &["get", "pv,pvc"]);
        let pv = row(&out.stdout, "persistentvolume/policy-pv-fit");
        let pvc = row(&out.stdout, "persistentvolumeclaim/data");
        // PV: NAME CAPACITY ACCESS-MODES RECLAIM-POLICY STATUS CLAIM …
        // PVC: NAME STATUS VOLUME CAPACITY …
        (pv.get(4).map(String::as_str) == Some("Bound")
            && pv.get(5).map(String::as_str) == Some("policy-pv/data")
            && pvc.get(1).map(String::as_str) == Some("Bound")
            && pvc.get(2).map(String::as_str) == Some("policy-pv-fit")
            && pvc.get(3).map(String::as_str) == Some("1Gi"))
        .then_some(())
    });
    let out = k1s
        .kubectl(k, &["get", "pv", "policy-pv-big"])
        .ok()
        .to_string();
    assert_eq!(
        row(&out, "policy-pv-big").get(4).map(String::as_str),
        Some("Available")
    );
    k1s.kubectl_in(k, ns, &["delete", "pvc", "data"]).ok();
    eventually(WAIT, "volume released", || {
        let out = k1s.kubectl(k, &["get", "pv", "policy-pv-fit"]);
        (row(&out.stdout, "policy-pv-fit").get(4).map(String::as_str) == Some("Released"))
            .then_some(())
    });
}

fn hpa_case(k1s: &K1s, k: &Kubectl) {
    let ns = "policy-hpa";
    k1s.kubectl(k, &["create", "namespace", ns]).ok();
    k1s.kubectl_in(k, ns, &["create", "deployment", "web", "--image=nginx"])
        .ok();
    k1s.kubectl_in(
        k,
        ns,
        &[
            "autoscale",
            "deployment",
            "web",
            "--min=2",
            "--max=4",
            "--cpu-percent=50",
        ],
    )
    .ok();
    eventually(WAIT, "deployment scaled to minReplicas", || {
        let out = k1s.kubectl_in(
            k,
            ns,
            &[
                "get",
                "deployment",
                "web",
                "-o",
                "jsonpath={.spec.replicas}",
            ],
        );
        (out.stdout == "2").then_some(())
    });
    // The next sync looks at metrics, which no node reports (simulated nodes run no kubelet).
    // The controller records its event before it writes the condition: wait for both.
    let scaling_active = |d: &str| {
        d.lines()
            .find(|l| l.trim_start().starts_with("ScalingActive"))
            .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
    };
    let described = eventually(WAIT, "ScalingActive False", || {
        let d = k1s.kubectl_in(k, ns, &["describe", "hpa", "web"]);
        (d.stdout.contains("FailedGetResourceMetric")
            && scaling_active(&d.stdout).as_deref()
                == Some("ScalingActive False FailedGetResourceMetric"))
        .then_some(d.stdout)
    });
    assert!(described.contains("SuccessfulRescale"), "{described}");
    let out = k1s.kubectl_in(k, ns, &["get", "hpa"]).ok().to_string();
    let r = row(&out, "web");
    // NAME REFERENCE TARGETS(2 words) MINPODS MAXPODS REPLICAS AGE
    assert_eq!(
        r.get(1).map(String::as_str),
        Some("Deployment/web"),
        "{out}"
    );
    assert!(out.contains("cpu: <unknown>/50%"), "{out}");
}

/// `kubectl drain` evicts through the subresource: the budget stops it part way, and
/// without the budget the node drains.
fn drain_case(k1s: &K1s, k: &Kubectl) {
    let ns = "policy-drain";
    k1s.kubectl(k, &["create", "namespace", ns]).ok();
    for i in 0..3 {
        apply(
            k1s,
            k,
            ns,
            &format!(
                "apiVersion: v1\nkind: Pod\nmetadata:\n  name: db-{i}\n  labels:\n    app: db\nspec:\n  nodeName: sim-node-0\n  terminationGracePeriodSeconds: 0\n  containers:\n  - name: c\n    image: postgres\n"
            ),
        );
    }
    k1s.kubectl_in(
        k,
        ns,
        &[
            "create",
            "pdb",
            "db",
            "--selector=app=db",
            "--min-available=2",
        ],
    )
    .ok();
    eventually(
        WAIT,
        "pods Running on the simulated node, budget of one",
        || {
            let out = k1s.kubectl_in(k, ns, &["get", "pdb"]);
            (row(&out.stdout, "db").get(3).map(String::as_str) == Some("1")).then_some(())
        },
    );
    let out = k1s.kubectl(
        k,
        &[
            "drain",
            "sim-node-0",
            "--force",
            "--ignore-daemonsets",
            "--timeout=15s",
        ],
    );
    let err = out.fails().to_string();
    assert!(
        err.contains("Cannot evict pod as it would violate the pod's disruption budget."),
        "{err}"
    );
    let left = eventually(WAIT, "one pod evicted", || {
        let out = k1s.kubectl_in(k, ns, &["get", "pods", "-o", "name"]);
        let n = out.stdout.lines().count();
        (n == 2).then_some(n)
    });
    assert_eq!(left, 2);
    let node = k1s
        .kubectl(k, &["get", "node", "sim-node-0"])
        .ok()
        .to_string();
    assert!(node.contains("SchedulingDisabled"), "{node}");
    k1s.kubectl_in(k, ns, &["delete", "pdb", "db"]).ok();
    let out = k1s
        .kubectl(
            k,
            &[
                "drain",
                "sim-node-0",
                "--force",
                "--ignore-daemonsets",
                "--timeout=60s",
            ],
        )
        .ok()
        .to_string();
    assert!(out.contains("node/sim-node-0 drained"), "{out}");
}

#[test]
fn policy_controllers() {
    let k1s = K1s::start_with(&["--simulate-nodes", "1"]);
    let k = newest_kubectl();
    drain_case(&k1s, &k);
    pdb_case(&k1s, &k);
    quota_case(&k1s, &k);
    pv_case(&k1s, &k);
    hpa_case(&k1s, &k);
}

//! Resource metrics end to end: one `k1s server` with its agent scrapes its kubelet's
//! `/metrics/resource` and serves `metrics.k8s.io/v1beta1`, so `kubectl top nodes` and
//! `kubectl top pods` (oldest and newest kubectl) print the node and a busy busybox pod
//! with non-zero CPU and memory, `kubectl get --raw` reads NodeMetrics/PodMetrics as
//! metrics-server writes them, and an autoscaler on CPU utilization scales a busy
//! Deployment up.
//!
//! Needs root, containerd and runc (scripts/test installs them) and the test images.

use std::time::Duration;

use k1s_e2e::{K1s, Kubectl, eventually, kubectl_versions, newest_kubectl};
use serde_json::Value;

/// Two scrapes at metrics-server's 15 s resolution after the container starts, and slack
/// for a machine busy with other tests.
const WAIT: Duration = Duration::from_secs(120);

/// The leading number of a quantity column (`12m`, `3Mi`).
fn amount(col: &str) -> u64 {
    col.chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap_or(0)
}

/// The output of `kubectl top` once its row whose first column is `name` shows non-zero
/// CPU and memory; fails with what it printed last and the API's answer.
fn top_row(k1s: &K1s, k: &Kubectl, args: &[&str], name: &str, memory_col: usize) -> String {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let r = k1s.kubectl(k, args);
        let found = r
            .stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .map(|line| {
                line.split_whitespace()
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            });
        if let Some(cols) = found {
            let cpu = cols.get(1).cloned().unwrap_or_default();
            let mem = cols.get(memory_col).cloned().unwrap_or_default();
            if r.code == 0
                && cpu.ends_with('m')
                && amount(&cpu) > 0
                && mem.ends_with("Mi")
                && amount(&mem) > 0
            {
                return r.stdout;
            }
        }
        if std::time::Instant::now() > deadline {
            let raw = k1s.kubectl(k, &["get", "--raw", "/apis/metrics.k8s.io/v1beta1/pods"]);
            panic!(
                "{k}: kubectl {args:?} never showed {name} busy: {r:?}\nthe API: {}{}",
                raw.stdout, raw.stderr
            );
        }
        std::thread::sleep(Duration::from_secs(2));
    }
}

#[test]
fn kubectl_top_reads_the_kubelets_resource_metrics() {
    let k1s = K1s::start_with_agent(&[]);
    let k = newest_kubectl();
    let versions = kubectl_versions();
    let oldest = versions.first().cloned().unwrap_or_else(newest_kubectl);
    let node = k1s.node_name().expect("node name");
    eventually(Duration::from_secs(30), "the node Ready", || {
        let r = k1s.kubectl(&k, &["get", "node", &node, "-o", "json"]);
        let v: Value = serde_json::from_str(&r.stdout).ok()?;
        v["status"]["conditions"]
            .as_array()?
            .iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
            .then_some(())
    });
    // A pod that keeps a little CPU busy, so its rate is above a millicore.
    let manifest = r#"apiVersion: v1
kind: Pod
metadata: {name: top-busy, labels: {app: top-busy}}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: spin
    image: busybox
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "x=$(head -c 8000000 /dev/zero | tr '\\0' a); while true; do i=0; while [ $i -lt 5000 ]; do i=$((i+1)); done; sleep 1; done"]
"#;
    let file = k1s.write_file("top-busy.yaml", manifest);
    k1s.kubectl(&k, &["apply", "-f", &file.to_string_lossy()])
        .ok();

    // Discovery lists the group with get and list only.
    let r = k1s.kubectl(&k, &["get", "--raw", "/apis/metrics.k8s.io/v1beta1"]);
    let list: Value = serde_json::from_str(&r.stdout).expect("resource list");
    let verbs: Vec<&Value> = list["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .map(|r| &r["verbs"])
        .collect();
    assert_eq!(verbs.len(), 2, "{list}");
    assert!(
        verbs
            .iter()
            .all(|v| **v == serde_json::json!(["get", "list"])),
        "{list}"
    );
    let r = k1s.kubectl(
        &k,
        &["api-resources", "--api-group=metrics.k8s.io", "-o", "name"],
    );
    assert!(
        r.stdout.contains("nodes.metrics.k8s.io"),
        "{}{}",
        r.stdout,
        r.stderr
    );
    assert!(
        r.stdout.contains("pods.metrics.k8s.io"),
        "{}{}",
        r.stdout,
        r.stderr
    );

    for kubectl in [&oldest, &k] {
        let nodes = top_row(&k1s, kubectl, &["top", "nodes"], &node, 3);
        assert!(nodes.starts_with("NAME"), "{nodes}");
        let pods = top_row(
            &k1s,
            kubectl,
            &["top", "pods", "-l", "app=top-busy"],
            "top-busy",
            2,
        );
        assert!(pods.starts_with("NAME"), "{pods}");
        let containers = k1s.kubectl(kubectl, &["top", "pod", "top-busy", "--containers"]);
        assert!(
            containers
                .stdout
                .lines()
                .any(|l| l.split_whitespace().take(2).eq(["top-busy", "spin"])),
            "{containers:?}"
        );
    }

    let r = k1s.kubectl(&k, &["get", "--raw", "/apis/metrics.k8s.io/v1beta1/nodes"]);
    let nodes: Value = serde_json::from_str(&r.stdout).expect("NodeMetricsList");
    assert_eq!(nodes["kind"], "NodeMetricsList");
    let item = nodes["items"]
        .as_array()
        .and_then(|items| {
            items
                .iter()
                .find(|n| n["metadata"]["name"] == node.as_str())
        })
        .unwrap_or_else(|| panic!("{node} not listed: {nodes}"));
    assert!(
        item["window"].as_str().is_some_and(|w| w.ends_with('s')),
        "{item}"
    );
    assert!(
        item["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{item}"
    );
    assert!(
        item["usage"]["cpu"].is_string() && item["usage"]["memory"].is_string(),
        "{item}"
    );

    let r = k1s.kubectl(
        &k,
        &[
            "get",
            "--raw",
            "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/top-busy",
        ],
    );
    let pod: Value = serde_json::from_str(&r.stdout).expect("PodMetrics");
    assert_eq!(pod["kind"], "PodMetrics", "{pod}");
    assert_eq!(pod["metadata"]["labels"]["app"], "top-busy", "{pod}");
    assert_eq!(pod["containers"][0]["name"], "spin", "{pod}");

    let r = k1s.kubectl(
        &k,
        &[
            "get",
            "--raw",
            "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/none",
        ],
    );
    assert_ne!(r.code, 0);
    assert!(
        r.stderr
            .contains("podmetrics.metrics.k8s.io \"none\" not found"),
        "{}",
        r.stderr
    );
    let r = k1s.kubectl(&k, &["top", "pod", "none"]);
    assert_ne!(r.code, 0, "{}", r.stdout);

    // An autoscaler on CPU utilization: the busy pod uses far more than its 1m request,
    // so the Deployment is scaled to its maximum.
    let manifest = r#"apiVersion: apps/v1
kind: Deployment
metadata: {name: hpa-busy}
spec:
  replicas: 1
  selector: {matchLabels: {app: hpa-busy}}
  template:
    metadata: {labels: {app: hpa-busy}}
    spec:
      terminationGracePeriodSeconds: 0
      containers:
      - name: spin
        image: busybox
        imagePullPolicy: IfNotPresent
        resources: {requests: {cpu: 1m}}
        command: ["sh", "-c", "while true; do i=0; while [ $i -lt 5000 ]; do i=$((i+1)); done; sleep 1; done"]
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: hpa-busy}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: hpa-busy}
  minReplicas: 1
  maxReplicas: 2
  metrics:
  - type: Resource
    resource: {name: cpu, target: {type: Utilization, averageUtilization: 50}}
"#;
    let file = k1s.write_file("hpa-busy.yaml", manifest);
    k1s.kubectl(&k, &["apply", "-f", &file.to_string_lossy()])
        .ok();
    let hpa = eventually(
        Duration::from_secs(150),
        "the autoscaler scales hpa-busy to 2",
        || {
            let r = k1s.kubectl(&k, &["get", "hpa", "hpa-busy", "-o", "json"]);
            let v: Value = serde_json::from_str(&r.stdout).ok()?;
            (v["status"]["desiredReplicas"] == 2).then_some(v)
        },
    );
    let metric = &hpa["status"]["currentMetrics"][0]["resource"];
    assert_eq!(metric["name"], "cpu", "{hpa}");
    assert!(
        metric["current"]["averageUtilization"]
            .as_i64()
            .is_some_and(|u| u > 50),
        "{hpa}"
    );
    let described = k1s.kubectl(&k, &["describe", "hpa", "hpa-busy"]).stdout;
    assert!(
        described.contains(
            "New size: 2; reason: cpu resource utilization (percentage of request) above target"
        ),
        "{described}"
    );
    eventually(Duration::from_secs(60), "hpa-busy has 2 replicas", || {
        let r = k1s.kubectl(
            &k,
            &[
                "get",
                "deployment",
                "hpa-busy",
                "-o",
                "jsonpath={.spec.replicas}",
            ],
        );
        (r.stdout == "2").then_some(())
    });
}

//! Node-pressure eviction and the kubelet's Summary API end to end: one `k1s server` with
//! its agent and a memory threshold that is always crossed
//! (`--kubelet-arg=eviction-hard=memory.available<1000Ti`). The node turns
//! MemoryPressure (upstream's reason and message, `kubectl describe node` as upstream),
//! gets the `node.kubernetes.io/memory-pressure:NoSchedule` taint, and a BestEffort pod
//! (tolerating the taint, so it is scheduled) is evicted: `Failed`, reason `Evicted`,
//! upstream's message, a DisruptionTarget condition and an Evicted event. On a second
//! server without pressure, the kubelet's
//! `/stats/summary` answers upstream's JSON to the admin and 401 without a certificate;
//! an unknown `--kubelet-arg` is refused at start.
//!
//! Needs root, containerd and runc (scripts/test installs them), curl and the test images.

use std::time::Duration;

use k1s_e2e::{K1s, eventually, newest_kubectl};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(90);

fn squeeze(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn memory_pressure_evicts_a_best_effort_pod() {
    let k1s = K1s::start_with_agent(&[
        "--kubelet-arg=eviction-hard=memory.available<1000Ti",
        "--kubelet-arg",
        "eviction-pressure-transition-period=30s",
    ]);
    let k = newest_kubectl();
    let node = k1s.node_name().expect("node name");
    let node_json = || -> Option<Value> {
        let r = k1s.kubectl(&k, &["get", "node", &node, "-o", "json"]);
        serde_json::from_str(&r.stdout).ok()
    };
    let cond = |n: &Value, ty: &str| -> Option<Value> {
        n["status"]["conditions"]
            .as_array()?
            .iter()
            .find(|c| c["type"] == ty)
            .cloned()
    };
    let pressure = eventually(WAIT, "MemoryPressure True", || {
        let n = node_json()?;
        cond(&n, "MemoryPressure").filter(|c| c["status"] == "True")
    });
    assert_eq!(pressure["reason"], "KubeletHasInsufficientMemory");
    assert_eq!(
        pressure["message"],
        "kubelet has insufficient memory available"
    );
    let n = node_json().expect("node");
    let disk = cond(&n, "DiskPressure").expect("DiskPressure");
    assert_eq!(disk["status"], "False", "{disk}");
    assert_eq!(disk["reason"], "KubeletHasNoDiskPressure");
    // The threshold is kept back from pods: nothing is allocatable.
    assert_eq!(n["status"]["allocatable"]["memory"], "0", "{}", n["status"]);
    eventually(WAIT, "the memory-pressure taint", || {
        let n = node_json()?;
        n["spec"]["taints"]
            .as_array()?
            .iter()
            .any(|t| {
                t["key"] == "node.kubernetes.io/memory-pressure" && t["effect"] == "NoSchedule"
            })
            .then_some(())
    });

    let manifest = k1s.write_file(
        "hog.yaml",
        r#"apiVersion: v1
kind: Pod
metadata: {name: hog}
spec:
  tolerations:
  - {key: node.kubernetes.io/memory-pressure, operator: Exists, effect: NoSchedule}
  containers:
  - name: c
    image: busybox
    imagePullPolicy: IfNotPresent
    command: ["sleep", "3600"]
"#,
    );
    k1s.kubectl(&k, &["apply", "-f", &manifest.to_string_lossy()])
        .ok();
    let pod = eventually(WAIT, "hog evicted", || {
        let r = k1s.kubectl(&k, &["get", "pod", "hog", "-o", "json"]);
        let p: Value = serde_json::from_str(&r.stdout).ok()?;
        (p["status"]["phase"] == "Failed").then_some(p)
    });
    let st = &pod["status"];
    assert_eq!(st["reason"], "Evicted", "{st}");
    let message = st["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with(
            "The node was low on resource: memory. Threshold quantity: 1000Ti, available: "
        ),
        "{message}"
    );
    let disruption = st["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "DisruptionTarget"))
        .unwrap_or_else(|| panic!("no DisruptionTarget condition: {st}"));
    assert_eq!(disruption["reason"], "TerminationByKubelet");
    assert_eq!(disruption["status"], "True");
    // As on a real cluster, kubectl's STATUS shows the killed container's reason
    // (`sleep` ignores SIGTERM: SIGKILL, 137, `Error`), not the pod's.
    let get = k1s.kubectl(&k, &["get", "pod", "hog"]);
    assert!(
        squeeze(get.ok()).contains("hog 0/1 Error"),
        "{}",
        get.stdout
    );
    eventually(WAIT, "the Evicted event", || {
        let r = k1s.kubectl(
            &k,
            &[
                "get",
                "events",
                "--field-selector",
                "reason=Evicted",
                "-o",
                "json",
            ],
        );
        let v: Value = serde_json::from_str(&r.stdout).ok()?;
        v["items"]
            .as_array()?
            .iter()
            .any(|e| e["involvedObject"]["name"] == "hog" && e["type"] == "Warning")
            .then_some(())
    });

    // A BestEffort pod that does not tolerate the pressure is refused at admission (bound
    // here directly: the scheduler would not place it).
    let manifest = k1s.write_file(
        "refused.yaml",
        &format!(
            r#"apiVersion: v1
kind: Pod
metadata: {{name: refused}}
spec:
  nodeName: {node}
  containers:
  - name: c
    image: busybox
    imagePullPolicy: IfNotPresent
    command: ["sleep", "3600"]
"#
        ),
    );
    k1s.kubectl(&k, &["apply", "-f", &manifest.to_string_lossy()])
        .ok();
    let refused = eventually(WAIT, "refused Failed", || {
        let r = k1s.kubectl(&k, &["get", "pod", "refused", "-o", "json"]);
        let p: Value = serde_json::from_str(&r.stdout).ok()?;
        (p["status"]["phase"] == "Failed").then_some(p)
    });
    assert_eq!(
        refused["status"]["reason"], "Evicted",
        "{}",
        refused["status"]
    );
    assert_eq!(
        refused["status"]["message"],
        "Pod was rejected: The node had condition: [MemoryPressure]. "
    );

    // describe node reads as upstream.
    let describe = k1s.kubectl(&k, &["describe", "node", &node]);
    let text = describe.ok();
    let lines: Vec<String> = text.lines().map(squeeze).collect();
    assert!(
        lines
            .iter()
            .any(|l| l == "Taints: node.kubernetes.io/memory-pressure:NoSchedule"),
        "{text}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("MemoryPressure True ")
            && l.ends_with(
                " KubeletHasInsufficientMemory kubelet has insufficient memory available"
            )),
        "{text}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("DiskPressure False ")
            && l.ends_with(" KubeletHasNoDiskPressure kubelet has no disk pressure")),
        "{text}"
    );
    assert!(
        text.contains("EvictionThresholdMet") || text.contains("NodeHasInsufficientMemory"),
        "{text}"
    );
}

#[test]
fn the_summary_api_reports_the_node_and_its_pods() {
    let k1s = K1s::start_with_agent(&[]);
    let k = newest_kubectl();
    let node = k1s.node_name().expect("node name");
    let node_json = || -> Option<Value> {
        let r = k1s.kubectl(&k, &["get", "node", &node, "-o", "json"]);
        serde_json::from_str(&r.stdout).ok()
    };
    eventually(WAIT, "the kubelet port", || {
        node_json()?["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"]
            .as_u64()
            .filter(|p| *p > 0)
    });
    // The Summary API, as the kubelet's other endpoints: the admin may, nobody else.
    let port = node_json().expect("node")["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"]
        .as_u64()
        .expect("kubelet port");
    let files = k1s.tls_files();
    let url = format!("https://127.0.0.1:{port}/stats/summary");
    let out = std::process::Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert"])
        .arg(&files.ca)
        .arg(&url)
        .output()
        .expect("curl (apt-get install curl)");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "401");
    let summary = || -> Value {
        let out = std::process::Command::new("curl")
            .args(["-s", "--cacert"])
            .arg(&files.ca)
            .arg("--cert")
            .arg(&files.cert)
            .arg("--key")
            .arg(&files.key)
            .arg(&url)
            .output()
            .expect("curl");
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("summary: {e}: {}", String::from_utf8_lossy(&out.stdout)))
    };
    // A running pod appears with its containers, network and volumes.
    let manifest = k1s.write_file(
        "runner.yaml",
        r#"apiVersion: v1
kind: Pod
metadata: {name: runner}
spec:
  volumes:
  - {name: scratch, emptyDir: {}}
  containers:
  - name: c
    image: busybox
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "echo hi > /scratch/f; sleep 3600"]
    volumeMounts: [{name: scratch, mountPath: /scratch}]
"#,
    );
    k1s.kubectl(&k, &["apply", "-f", &manifest.to_string_lossy()])
        .ok();
    let mut last = Value::Null;
    let deadline = std::time::Instant::now() + WAIT;
    let s = loop {
        let s = summary();
        let found = s["pods"].as_array().is_some_and(|ps| {
            ps.iter().any(|p| {
                p["podRef"]["name"] == "runner" && p["containers"][0]["memory"].is_object()
            })
        });
        if found {
            break s;
        }
        if std::time::Instant::now() > deadline {
            let pod = k1s.kubectl(&k, &["get", "pod", "runner", "-o", "yaml"]);
            panic!(
                "runner not in the summary:\n{last:#}\n{}{}",
                pod.stdout, pod.stderr
            );
        }
        last = s;
        std::thread::sleep(Duration::from_secs(1));
    };
    assert_eq!(s["node"]["nodeName"], node.as_str());
    for key in ["cpu", "memory", "fs", "runtime", "rlimit", "network"] {
        assert!(s["node"].get(key).is_some(), "node.{key} missing: {s}");
    }
    let runner = s["pods"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["podRef"]["name"] == "runner"))
        .expect("runner");
    assert_eq!(runner["podRef"]["namespace"], "default");
    assert_eq!(runner["containers"][0]["name"], "c");
    assert!(
        runner["containers"][0]["cpu"]["usageCoreNanoSeconds"].is_u64(),
        "{runner}"
    );
    assert!(runner["memory"]["workingSetBytes"].is_u64(), "{runner}");
    assert!(runner["network"]["interfaces"].is_array(), "{runner}");
    assert!(
        runner["ephemeral-storage"]["usedBytes"].is_u64(),
        "{runner}"
    );
    let scratch = runner["volume"]
        .as_array()
        .and_then(|vs| vs.iter().find(|v| v["name"] == "scratch"))
        .unwrap_or_else(|| panic!("no scratch volume: {runner}"));
    assert!(
        scratch["usedBytes"].as_u64().is_some_and(|b| b >= 3),
        "{scratch}"
    );
}

#[test]
fn an_unknown_kubelet_arg_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = std::process::Command::new(k1s_e2e::k1s_binary())
        .args(["server", "--kubelet-arg=max-pods=10", "--data-dir"])
        .arg(dir.path().join("data"))
        .output()
        .expect("k1s");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--kubelet-arg \"max-pods\" is not supported by k1s's kubelet (supported: eviction-hard, "),
        "{err}"
    );
}

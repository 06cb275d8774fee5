//! The kubelet end to end: one `k1s server` with its agent (embedded containerd, bridge
//! network, the test images in its airgap folder) runs real pods — a busybox that
//! completes with its output in its CRI log file, an nginx serving its page on its pod IP,
//! a crash-looping container, a delete that frees the pod's address — and keeps a running
//! container across a SIGKILL and restart of the server.
//!
//! Needs root, containerd and runc (scripts/test installs them) and the test images
//! (scripts/build-test-images, run by the harness when missing).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use k1s_e2e::{K1s, Kubectl, eventually, kubectl_versions, newest_kubectl};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(90);

fn pod_json(k1s: &K1s, k: &Kubectl, name: &str) -> Option<Value> {
    let r = k1s.kubectl(k, &["get", "pod", name, "-o", "json"]);
    if r.code != 0 {
        return None;
    }
    serde_json::from_str(&r.stdout).ok()
}

fn container_status<'a>(pod: &'a Value, name: &str) -> Option<&'a Value> {
    pod["status"]["containerStatuses"]
        .as_array()?
        .iter()
        .find(|c| c["name"] == name)
}

fn apply(k1s: &K1s, k: &Kubectl, name: &str, manifest: &str) {
    let file = k1s.write_file(&format!("{name}.yaml"), manifest);
    let path = file.to_string_lossy().into_owned();
    k1s.kubectl(k, &["apply", "-f", &path]).ok();
}

fn busybox_completes(k1s: &K1s, k: &Kubectl) {
    apply(
        k1s,
        k,
        "bb",
        r#"apiVersion: v1
kind: Pod
metadata: {name: bb}
spec:
  restartPolicy: Never
  containers:
  - name: bb
    image: busybox
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "echo hello from busybox; cat /etc/resolv.conf"]
"#,
    );
    let pod = eventually(WAIT, "bb Succeeded", || {
        pod_json(k1s, k, "bb").filter(|p| p["status"]["phase"] == "Succeeded")
    });
    let st = container_status(&pod, "bb").expect("bb status");
    assert_eq!(st["state"]["terminated"]["reason"], "Completed", "{st}");
    assert_eq!(st["state"]["terminated"]["exitCode"], 0);
    assert!(
        st["containerID"]
            .as_str()
            .is_some_and(|id| id.starts_with("containerd://")),
        "{st}"
    );
    let uid = pod["metadata"]["uid"].as_str().unwrap_or_default();
    let log = k1s
        .dir()
        .join("pod-logs")
        .join(format!("default_bb_{uid}"))
        .join("bb")
        .join("0.log");
    let text = std::fs::read_to_string(&log)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", log.display()));
    assert!(
        text.lines()
            .any(|l| l.ends_with(" stdout F hello from busybox")),
        "{text}"
    );
    assert!(text.contains("nameserver 10.43.0.10"), "{text}");
    assert!(
        text.contains("search default.svc.cluster.local svc.cluster.local cluster.local"),
        "{text}"
    );
}

fn nginx_serves_then_delete_frees_its_address(k1s: &K1s, k: &Kubectl) {
    apply(
        k1s,
        k,
        "web",
        r#"apiVersion: v1
kind: Pod
metadata: {name: web, labels: {app: web}}
spec:
  containers:
  - name: nginx
    image: nginx:latest
    imagePullPolicy: IfNotPresent
    ports: [{containerPort: 80}]
    readinessProbe:
      httpGet: {path: /, port: 80}
      periodSeconds: 1
"#,
    );
    let pod = eventually(WAIT, "web Running and Ready", || {
        pod_json(k1s, k, "web").filter(|p| {
            p["status"]["phase"] == "Running"
                && p["status"]["conditions"].as_array().is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c["type"] == "Ready" && c["status"] == "True")
                })
        })
    });
    let ip = pod["status"]["podIP"].as_str().expect("podIP").to_string();
    let uid = pod["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let page = eventually(
        Duration::from_secs(20),
        "the nginx page on the pod IP",
        || {
            let mut s = TcpStream::connect_timeout(
                &format!("{ip}:80").parse().ok()?,
                Duration::from_secs(2),
            )
            .ok()?;
            s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
            s.write_all(b"GET / HTTP/1.0\r\nHost: web\r\n\r\n").ok()?;
            let mut body = String::new();
            let _ = s.read_to_string(&mut body);
            body.contains("200 OK").then_some(body)
        },
    );
    assert!(page.to_lowercase().contains("nginx"), "{page}");

    k1s.kubectl(k, &["delete", "pod", "web", "--wait=true", "--timeout=60s"])
        .ok();
    let ip_file = k1s
        .data_dir()
        .join("agent")
        .join("net")
        .join("pods")
        .join(&uid);
    eventually(Duration::from_secs(30), "web's address freed", || {
        (!ip_file.exists()).then_some(())
    });
    eventually(
        Duration::from_secs(10),
        "nothing answers on the old pod IP",
        || {
            TcpStream::connect_timeout(
                &format!("{ip}:80").parse().ok()?,
                Duration::from_millis(500),
            )
            .is_err()
            .then_some(())
        },
    );
}

fn a_crashing_container_backs_off(k1s: &K1s, k: &Kubectl) {
    apply(
        k1s,
        k,
        "crash",
        r#"apiVersion: v1
kind: Pod
metadata: {name: crash}
spec:
  containers:
  - name: crash
    image: busybox
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "echo dying; exit 3"]
"#,
    );
    let pod = eventually(WAIT, "crash in CrashLoopBackOff", || {
        pod_json(k1s, k, "crash").filter(|p| {
            container_status(p, "crash").is_some_and(|s| {
                s["restartCount"].as_i64().unwrap_or(0) > 0
                    && s["state"]["waiting"]["reason"] == "CrashLoopBackOff"
            })
        })
    });
    let st = container_status(&pod, "crash").expect("status");
    assert_eq!(st["lastState"]["terminated"]["exitCode"], 3, "{st}");
    assert_eq!(st["lastState"]["terminated"]["reason"], "Error", "{st}");
    let shown = k1s.kubectl(k, &["get", "pod", "crash"]);
    assert!(shown.ok().contains("CrashLoopBackOff"), "{}", shown.stdout);
}

fn volumes_reach_the_containers(k1s: &K1s, k: &Kubectl) {
    apply(
        k1s,
        k,
        "vols",
        r#"apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {greeting: hello-from-configmap}
---
apiVersion: v1
kind: Secret
metadata: {name: creds}
stringData: {password: s3cret}
---
apiVersion: v1
kind: Pod
metadata: {name: vols}
spec:
  restartPolicy: Never
  volumes:
  - {name: cfg, configMap: {name: settings}}
  - {name: shared, emptyDir: {}}
  - name: token
    projected:
      sources:
      - serviceAccountToken: {path: token, expirationSeconds: 3600}
      - configMap: {name: kube-root-ca.crt, items: [{key: ca.crt, path: ca.crt}]}
  initContainers:
  - name: writer
    image: busybox
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "echo written-by-init > /shared/note"]
    volumeMounts: [{name: shared, mountPath: /shared}]
  containers:
  - name: reader
    image: busybox
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "cat /cfg/greeting; echo; cat /shared/note; echo pw=$PASSWORD; head -c 3 /var/run/token/token; echo; head -1 /var/run/token/ca.crt"]
    env: [{name: PASSWORD, valueFrom: {secretKeyRef: {name: creds, key: password}}}]
    volumeMounts:
    - {name: cfg, mountPath: /cfg}
    - {name: shared, mountPath: /shared}
    - {name: token, mountPath: /var/run/token}
"#,
    );
    let pod = eventually(WAIT, "vols Succeeded", || {
        pod_json(k1s, k, "vols").filter(|p| p["status"]["phase"] == "Succeeded")
    });
    let uid = pod["metadata"]["uid"].as_str().unwrap_or_default();
    let log = k1s
        .dir()
        .join("pod-logs")
        .join(format!("default_vols_{uid}"))
        .join("reader")
        .join("0.log");
    let text = std::fs::read_to_string(&log)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", log.display()));
    for want in [
        " F hello-from-configmap",
        " F written-by-init",
        " F pw=s3cret",
        " F eyJ",
        " F -----BEGIN CERTIFICATE-----",
    ] {
        assert!(
            text.lines().any(|l| l.ends_with(want)),
            "no {want:?} in:\n{text}"
        );
    }
}

/// The seed flow through the real kubelet: logs, exec (with its exit code and stdin), cp,
/// and port-forward to nginx in the pod's network namespace, with the oldest kubectl
/// (SPDY) and the newest (WebSocket).
fn streams_reach_real_containers(k1s: &K1s, newest: &Kubectl) {
    apply(
        k1s,
        newest,
        "stream",
        r#"apiVersion: v1
kind: Pod
metadata: {name: stream, labels: {app: stream}}
spec:
  containers:
  - name: nginx
    image: nginx:latest
    imagePullPolicy: IfNotPresent
    ports: [{containerPort: 80}]
    readinessProbe:
      httpGet: {path: /, port: 80}
      periodSeconds: 1
"#,
    );
    eventually(WAIT, "stream Running", || {
        pod_json(k1s, newest, "stream").filter(|p| p["status"]["phase"] == "Running")
    });
    let oldest = kubectl_versions()
        .into_iter()
        .min_by_key(|k| k.minor)
        .expect("a kubectl");
    for k in [&oldest, newest] {
        let out = k1s.kubectl(k, &["exec", "stream", "--", "cat", "/etc/hostname"]);
        assert_eq!(out.ok().trim(), "stream", "{k}");
        let out = k1s.kubectl(k, &["exec", "stream", "--", "sh", "-c", "exit 3"]);
        assert_eq!(out.code, 3, "{k}: {out:?}");
        let out = k1s.kubectl_with(
            k,
            &["exec", "-i", "stream", "--", "tr", "a-z", "A-Z"],
            Some("shout\n"),
            &[],
        );
        assert_eq!(out.ok(), "SHOUT\n", "{k}");

        // port-forward to nginx, then the page from the local port.
        let mut pf = k1s.kubectl_spawn(k, &["port-forward", "pod/stream", ":80"]);
        let mut pf_out = BufReader::new(pf.stdout.take().expect("stdout"));
        let mut line = String::new();
        pf_out.read_line(&mut line).expect("port-forward output");
        let local_port: u16 = line
            .split("127.0.0.1:")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("{k}: port-forward said {line:?}"));
        let mut conn = TcpStream::connect(("127.0.0.1", local_port)).expect("connect");
        conn.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        conn.write_all(b"GET / HTTP/1.0\r\nHost: stream\r\n\r\n")
            .expect("request");
        let mut page = String::new();
        let _ = conn.read_to_string(&mut page);
        let _ = pf.kill();
        let _ = pf.wait();
        assert!(page.contains("200 OK"), "{k}: {page}");

        // nginx logs every request to stdout: the GET through port-forward is in the log.
        let logs = eventually(Duration::from_secs(10), "the access log line", || {
            let out = k1s.kubectl(k, &["logs", "stream"]);
            (out.code == 0 && out.stdout.contains("GET / HTTP/1.0")).then_some(out.stdout)
        });
        assert!(!logs.is_empty(), "{k}");
    }
    // Cluster DNS and the Service proxy from inside the pod: the seed tutorial's lookup,
    // then the pod's own Service by its short name (search domains), through the ClusterIP
    // back to itself (hairpin).
    let out = k1s.kubectl(
        newest,
        &[
            "exec",
            "stream",
            "--",
            "nslookup",
            "kube-dns.kube-system.svc.cluster.local",
        ],
    );
    // (busybox prints the server first; the answer follows the name.)
    let answer = out
        .ok()
        .split("Name:")
        .nth(1)
        .unwrap_or_default()
        .to_string();
    assert!(answer.contains("10.43.0.10"), "{out:?}");
    k1s.kubectl(
        newest,
        &[
            "expose",
            "pod",
            "stream",
            "--name",
            "stream-svc",
            "--port",
            "8080",
            "--target-port",
            "80",
        ],
    )
    .ok();
    let page = eventually(
        Duration::from_secs(20),
        "the page through the Service",
        || {
            let out = k1s.kubectl(
                newest,
                &[
                    "exec",
                    "stream",
                    "--",
                    "wget",
                    "-qO-",
                    "http://stream-svc:8080/",
                ],
            );
            (out.code == 0).then_some(out.stdout)
        },
    );
    assert!(page.to_lowercase().contains("nginx"), "{page}");
    // cp in and back out (tar through exec).
    let local = k1s.write_file("cp-in.txt", "copied through tar\n");
    let local = local.to_string_lossy().into_owned();
    k1s.kubectl(newest, &["cp", &local, "stream:/tmp/cp-in.txt"])
        .ok();
    let out = k1s.kubectl(newest, &["exec", "stream", "--", "cat", "/tmp/cp-in.txt"]);
    assert_eq!(out.ok(), "copied through tar\n");
}

#[test]
fn pods_run_on_the_embedded_containerd() {
    let mut k1s = K1s::start_with_agent(&[]);
    let k = newest_kubectl();
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
    std::thread::scope(|s| {
        s.spawn(|| busybox_completes(&k1s, &k));
        s.spawn(|| nginx_serves_then_delete_frees_its_address(&k1s, &k));
        s.spawn(|| a_crashing_container_backs_off(&k1s, &k));
        s.spawn(|| volumes_reach_the_containers(&k1s, &k));
        s.spawn(|| streams_reach_real_containers(&k1s, &k));
    });

    // A SIGKILLed server adopts its running container again.
    apply(
        &k1s,
        &k,
        "keeper",
        r#"apiVersion: v1
kind: Pod
metadata: {name: keeper}
spec:
  containers:
  - name: sleeper
    image: busybox
    imagePullPolicy: IfNotPresent
    command: ["sleep", "3600"]
"#,
    );
    let before = eventually(WAIT, "keeper Running", || {
        pod_json(&k1s, &k, "keeper").filter(|p| p["status"]["phase"] == "Running")
    });
    let id = container_status(&before, "sleeper").expect("status")["containerID"].clone();
    k1s.kill();
    k1s.start_again();
    eventually(Duration::from_secs(30), "the node Ready again", || {
        let r = k1s.kubectl(&k, &["get", "node", &node, "-o", "json"]);
        let v: Value = serde_json::from_str(&r.stdout).ok()?;
        let ready = v["status"]["conditions"]
            .as_array()?
            .iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True");
        ready.then_some(())
    });
    std::thread::sleep(Duration::from_secs(5));
    let after = pod_json(&k1s, &k, "keeper").expect("keeper");
    let st = container_status(&after, "sleeper").expect("status");
    assert_eq!(after["status"]["phase"], "Running", "{after}");
    assert_eq!(st["containerID"], id, "the same container runs: {st}");
    assert_eq!(st["restartCount"], 0, "{st}");
    assert!(st["state"]["running"].is_object(), "{st}");
}

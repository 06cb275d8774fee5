//! The kubelet's workloads end to end on the embedded containerd (issue 10's Done-when 3,
//! 4 and 6): `kubectl run -i --tty` gives an interactive shell with the cluster's DNS in
//! its resolv.conf; a Deployment of nginx with startup, readiness and liveness probes
//! becomes 3/3 Ready; a killed main process and a failing liveness probe (httpGet made to
//! 404, exec on a removed file) restart their containers; a memory hog over its limit is
//! `OOMKilled`; a missing image goes `ErrImagePull` then `ImagePullBackOff`; and a SIGKILLed
//! containerd is restarted by the server with its running containers untouched.
//!
//! Needs root, containerd and runc (scripts/test installs them), util-linux's `script` for
//! the terminal, and the test images (scripts/build-test-images, run by the harness when
//! missing).

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k1s_e2e::{K1s, Kubectl, eventually, kubectl_versions, newest_kubectl};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(120);

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

fn restarts(pod: &Value, name: &str) -> i64 {
    container_status(pod, name)
        .and_then(|s| s["restartCount"].as_i64())
        .unwrap_or(0)
}

fn ready(pod: &Value) -> bool {
    pod["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    })
}

fn apply(k1s: &K1s, k: &Kubectl, name: &str, manifest: &str) {
    let file = k1s.write_file(&format!("{name}.yaml"), manifest);
    let path = file.to_string_lossy().into_owned();
    k1s.kubectl(k, &["apply", "-f", &path]).ok();
}

/// The events of one object, as `type reason message` lines.
fn events_of(k1s: &K1s, k: &Kubectl, name: &str) -> Vec<String> {
    let selector = format!("involvedObject.name={name}");
    let r = k1s.kubectl(
        k,
        &["get", "events", "--field-selector", &selector, "-o", "json"],
    );
    let v: Value = serde_json::from_str(&r.stdout).unwrap_or_default();
    v["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|e| {
                    format!(
                        "{} {} {}",
                        e["type"].as_str().unwrap_or_default(),
                        e["reason"].as_str().unwrap_or_default(),
                        e["message"].as_str().unwrap_or_default()
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// `kubectl run -i --tty` under a pseudo-terminal (util-linux `script`), typed into like a
/// person: `cat /etc/resolv.conf`, then `exit`; the pod then ends Succeeded.
fn interactive_shell(k1s: &K1s, k: &Kubectl, pod: &str) {
    let script = std::path::Path::new("/usr/bin/script");
    assert!(
        script.exists(),
        "util-linux's `script` is needed to give kubectl a terminal (apt-get install bsdutils)"
    );
    let quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
    let kubeconfig = k1s.kubeconfig().to_string_lossy().into_owned();
    let cache = k1s
        .dir()
        .join(format!("cache-tty-{}", k.minor))
        .to_string_lossy()
        .into_owned();
    let path = k.path.to_string_lossy().into_owned();
    // The image is local: with no registry on the internet, `busybox` (`:latest`, so
    // `Always` by default) is run from the node's store.
    let line = [
        path.as_str(),
        "--kubeconfig",
        &kubeconfig,
        "--cache-dir",
        &cache,
        "run",
        "-i",
        "--tty",
        pod,
        "--image=busybox",
        "--image-pull-policy=IfNotPresent",
        "--restart=Never",
        "--",
        "sh",
    ]
    .iter()
    .map(|a| quote(a))
    .collect::<Vec<_>>()
    .join(" ");
    let mut child = Command::new(script)
        .args(["-qfec", &line, "/dev/null"])
        .env("TERM", "xterm")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run script: {e}"));
    let output = Arc::new(Mutex::new(String::new()));
    let mut stdout = child.stdout.take().expect("stdout");
    let sink = output.clone();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            if let Ok(mut o) = sink.lock() {
                o.push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        }
    });
    let mut stdin = child.stdin.take().expect("stdin");
    let seen = |what: &str| output.lock().map(|o| o.contains(what)).unwrap_or(false);
    let text = || output.lock().map(|o| o.clone()).unwrap_or_default();

    // kubectl says this once it is attached to the shell.
    let deadline = Instant::now() + WAIT;
    while !seen("If you don't see a command prompt") {
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "{k}: kubectl run ended ({status}) before the shell:\n{}",
                text()
            );
        }
        assert!(
            Instant::now() < deadline,
            "{k}: no shell from kubectl run -i --tty:\n{}",
            text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut typed = Instant::now() - Duration::from_secs(10);
    while !seen("ndots:5") {
        if typed.elapsed() > Duration::from_secs(5) {
            stdin
                .write_all(b"cat /etc/resolv.conf\n")
                .expect("type into the terminal");
            stdin.flush().ok();
            typed = Instant::now();
        }
        assert!(
            Instant::now() < deadline,
            "{k}: the shell did not answer:\n{}",
            text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    stdin.write_all(b"exit\n").expect("type exit");
    stdin.flush().ok();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Ok(Some(status)) = child.try_wait() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{k}: kubectl run did not end after exit:\n{}", text());
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    drop(stdin);
    let _ = reader.join();
    let out = text();
    assert!(
        status.success(),
        "{k}: kubectl run ended with {status}:\n{out}"
    );
    for want in [
        "nameserver 10.43.0.10",
        "search default.svc.cluster.local svc.cluster.local cluster.local",
        "options ndots:5",
    ] {
        assert!(out.contains(want), "{k}: no {want:?} in:\n{out}");
    }
    let done = eventually(WAIT, "the shell's pod Succeeded", || {
        pod_json(k1s, k, pod).filter(|p| p["status"]["phase"] == "Succeeded")
    });
    let st = container_status(&done, pod).expect("container status");
    assert_eq!(st["state"]["terminated"]["reason"], "Completed", "{st}");
    assert_eq!(st["state"]["terminated"]["exitCode"], 0, "{st}");
    let shown = k1s.kubectl(k, &["get", "pod", pod]);
    assert!(shown.ok().contains("Completed"), "{k}: {}", shown.stdout);
}

fn interactive_shells(k1s: &K1s, newest: &Kubectl) {
    let oldest = kubectl_versions()
        .into_iter()
        .min_by_key(|k| k.minor)
        .expect("a kubectl");
    interactive_shell(k1s, newest, "box");
    interactive_shell(k1s, &oldest, "box-oldest");
}

/// A Deployment of three nginx with startup (tcpSocket), readiness and liveness (httpGet)
/// probes; one replica's main process killed, another's page removed so its liveness
/// probe gets 404.
fn deployment_with_probes(k1s: &K1s, k: &Kubectl) {
    apply(
        k1s,
        k,
        "webd",
        r#"apiVersion: apps/v1
kind: Deployment
metadata: {name: webd}
spec:
  replicas: 3
  selector: {matchLabels: {app: webd}}
  template:
    metadata: {labels: {app: webd}}
    spec:
      terminationGracePeriodSeconds: 5
      containers:
      - name: nginx
        image: nginx:latest
        imagePullPolicy: IfNotPresent
        ports: [{containerPort: 80, name: http}]
        startupProbe:
          tcpSocket: {port: http}
          periodSeconds: 1
          failureThreshold: 30
        readinessProbe:
          httpGet: {path: /, port: 80}
          periodSeconds: 1
        livenessProbe:
          httpGet: {path: /index.html, port: http}
          periodSeconds: 1
          failureThreshold: 2
"#,
    );
    let out = k1s.kubectl(
        k,
        &["rollout", "status", "deployment/webd", "--timeout=180s"],
    );
    assert!(
        out.ok().contains("successfully rolled out"),
        "{}",
        out.stdout
    );
    let shown = k1s.kubectl(k, &["get", "deployment", "webd"]);
    assert!(shown.ok().contains("3/3"), "{}", shown.stdout);
    let pods = k1s.kubectl(
        k,
        &[
            "get",
            "pods",
            "-l",
            "app=webd",
            "-o",
            "jsonpath={.items[*].metadata.name}",
        ],
    );
    let names: Vec<String> = pods.ok().split_whitespace().map(str::to_string).collect();
    assert_eq!(names.len(), 3, "{names:?}");

    // The main process killed: the container restarts and the pod is Ready again.
    let killed = &names[0];
    let before = pod_json(k1s, k, killed).expect("pod");
    let id = container_status(&before, "nginx").expect("status")["containerID"].clone();
    assert_eq!(restarts(&before, "nginx"), 0, "{before}");
    let _ = k1s.kubectl(k, &["exec", killed, "--", "kill", "1"]);
    let after = eventually(WAIT, "the killed nginx restarted and Ready", || {
        pod_json(k1s, k, killed).filter(|p| restarts(p, "nginx") >= 1 && ready(p))
    });
    let st = container_status(&after, "nginx").expect("status");
    assert_ne!(st["containerID"], id, "a new container: {st}");
    assert!(st["state"]["running"].is_object(), "{st}");
    assert!(st["lastState"]["terminated"].is_object(), "{st}");

    // The page the liveness probe asks for removed: 404, Unhealthy, Killing, restart.
    let sick = &names[1];
    k1s.kubectl(
        k,
        &["exec", sick, "--", "rm", "/usr/share/nginx/html/index.html"],
    )
    .ok();
    let after = eventually(
        WAIT,
        "the sick nginx restarted by its liveness probe",
        || pod_json(k1s, k, sick).filter(|p| restarts(p, "nginx") >= 1 && ready(p)),
    );
    let st = container_status(&after, "nginx").expect("status");
    assert!(st["state"]["running"].is_object(), "{st}");
    let events = events_of(k1s, k, sick);
    assert!(
        events.iter().any(|e| e
            == "Warning Unhealthy Liveness probe failed: HTTP probe failed with statuscode: 404"),
        "{events:#?}"
    );
    assert!(
        events.iter().any(|e| e
            == "Normal Killing Container nginx failed liveness probe, will be restarted"),
        "{events:#?}"
    );
    let described = k1s.kubectl(k, &["describe", "pod", sick]);
    let text = described.ok();
    assert!(text.contains("Liveness probe failed:"), "{text}");
    assert!(text.contains("Killing"), "{text}");

    // The untouched replica never restarted, and all three are Ready again.
    let calm = pod_json(k1s, k, &names[2]).expect("pod");
    assert_eq!(restarts(&calm, "nginx"), 0, "{calm}");
    let out = k1s.kubectl(
        k,
        &["rollout", "status", "deployment/webd", "--timeout=120s"],
    );
    out.ok();
}

/// An exec liveness probe on a file the test removes.
fn exec_liveness_restarts(k1s: &K1s, k: &Kubectl) {
    apply(
        k1s,
        k,
        "live",
        r#"apiVersion: v1
kind: Pod
metadata: {name: live}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: live
    image: busybox
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "touch /tmp/healthy; exec sleep 3600"]
    livenessProbe:
      exec: {command: ["cat", "/tmp/healthy"]}
      periodSeconds: 1
      failureThreshold: 1
"#,
    );
    eventually(WAIT, "live Running", || {
        pod_json(k1s, k, "live").filter(|p| p["status"]["phase"] == "Running")
    });
    std::thread::sleep(Duration::from_secs(2));
    let pod = pod_json(k1s, k, "live").expect("live");
    assert_eq!(restarts(&pod, "live"), 0, "a healthy container: {pod}");
    k1s.kubectl(k, &["exec", "live", "--", "rm", "/tmp/healthy"])
        .ok();
    let pod = eventually(WAIT, "live restarted", || {
        pod_json(k1s, k, "live").filter(|p| {
            restarts(p, "live") >= 1
                && container_status(p, "live").is_some_and(|s| s["state"]["running"].is_object())
        })
    });
    let st = container_status(&pod, "live").expect("status");
    // Killed by the kubelet: sleep, as pid 1 without a handler, ignores SIGTERM and dies
    // of the SIGKILL after the grace period.
    assert_eq!(st["lastState"]["terminated"]["exitCode"], 137, "{st}");
    assert_eq!(st["lastState"]["terminated"]["reason"], "Error", "{st}");
    let events = events_of(k1s, k, "live");
    assert!(
        events.iter().any(|e| e.starts_with(
            "Warning Unhealthy Liveness probe failed: cat: can't open '/tmp/healthy'"
        )),
        "{events:#?}"
    );
    assert!(
        events
            .iter()
            .any(|e| e == "Normal Killing Container live failed liveness probe, will be restarted"),
        "{events:#?}"
    );
}

/// A process that really touches more memory than its limit: dd reading /dev/zero into a
/// 256 MiB buffer under a 64 MiB limit.
fn memory_hog_is_oom_killed(k1s: &K1s, k: &Kubectl) {
    apply(
        k1s,
        k,
        "hog",
        r#"apiVersion: v1
kind: Pod
metadata: {name: hog}
spec:
  containers:
  - name: hog
    image: busybox
    imagePullPolicy: IfNotPresent
    command: ["dd", "if=/dev/zero", "of=/dev/null", "bs=256M", "count=4"]
    resources:
      limits: {memory: 64Mi}
"#,
    );
    let pod = eventually(WAIT, "hog OOMKilled", || {
        pod_json(k1s, k, "hog").filter(|p| {
            container_status(p, "hog")
                .is_some_and(|s| s["lastState"]["terminated"]["reason"] == "OOMKilled")
        })
    });
    let st = container_status(&pod, "hog").expect("status");
    assert_eq!(st["lastState"]["terminated"]["exitCode"], 137, "{st}");
    assert!(restarts(&pod, "hog") >= 1, "{st}");
    let shown = eventually(WAIT, "OOMKilled or CrashLoopBackOff shown", || {
        let out = k1s.kubectl(k, &["get", "pod", "hog"]);
        (out.stdout.contains("OOMKilled") || out.stdout.contains("CrashLoopBackOff"))
            .then_some(out.stdout)
    });
    assert!(!shown.is_empty());
}

/// An image nobody serves: ErrImagePull, then ImagePullBackOff, with upstream's events.
fn missing_image_backs_off(k1s: &K1s, k: &Kubectl) {
    // A registry on loopback that refuses connections: no internet needed, fails at once.
    let image = "127.0.0.1:1/k1s-e2e/no-such-image:v1";
    apply(
        k1s,
        k,
        "ghost",
        &format!(
            r#"apiVersion: v1
kind: Pod
metadata: {{name: ghost}}
spec:
  containers:
  - name: ghost
    image: {image}
"#
        ),
    );
    let mut seen: Vec<String> = Vec::new();
    let deadline = Instant::now() + WAIT;
    loop {
        let out = k1s.kubectl(k, &["get", "pod", "ghost", "--no-headers"]);
        let status = out.stdout.split_whitespace().nth(2).unwrap_or_default();
        if seen.last().map(String::as_str) != Some(status) {
            seen.push(status.to_string());
        }
        if seen.iter().any(|s| s == "ErrImagePull") && status == "ImagePullBackOff" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "ghost never went ErrImagePull then ImagePullBackOff: {seen:?}\n{:#?}\n{}",
            events_of(k1s, k, "ghost"),
            pod_json(k1s, k, "ghost").unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let pod = pod_json(k1s, k, "ghost").expect("ghost");
    let st = container_status(&pod, "ghost").expect("status");
    assert_eq!(st["state"]["waiting"]["reason"], "ImagePullBackOff", "{st}");
    // The last pull's error follows, as upstream's 1.32+ kubelet says it.
    assert!(
        st["state"]["waiting"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with(&format!(
                "Back-off pulling image \"{image}\": ErrImagePull: "
            ))),
        "{st}"
    );
    assert_eq!(pod["status"]["phase"], "Pending", "{pod}");
    let events = events_of(k1s, k, "ghost");
    for want in [
        format!("Normal Pulling Pulling image \"{image}\""),
        format!("Warning Failed Failed to pull image \"{image}\": "),
        "Warning Failed Error: ErrImagePull".to_string(),
        format!("Normal BackOff Back-off pulling image \"{image}\""),
        "Warning Failed Error: ImagePullBackOff".to_string(),
    ] {
        assert!(
            events.iter().any(|e| e.starts_with(&want)),
            "no {want:?} in {events:#?}"
        );
    }
    let described = k1s.kubectl(k, &["describe", "pod", "ghost"]);
    let text = described.ok();
    assert!(text.contains("Failed to pull image"), "{text}");
    assert!(text.contains("Back-off pulling image"), "{text}");
}

/// The pid of the embedded containerd serving `data`.
fn containerd_pid(data: &str) -> Option<u32> {
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|p| {
        let pid: u32 = p.file_name().to_string_lossy().parse().ok()?;
        let raw = std::fs::read(p.path().join("cmdline")).ok()?;
        let args: Vec<String> = raw
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let binary = args.first()?.rsplit('/').next()?.to_string();
        (binary == "containerd" && args.iter().any(|a| a.contains(data))).then_some(pid)
    })
}

/// A process of the container whose cgroup path ends in `id`.
fn pid_in_cgroup_of(id: &str) -> Option<u32> {
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|p| {
        let pid: u32 = p.file_name().to_string_lossy().parse().ok()?;
        let cgroups = std::fs::read_to_string(p.path().join("cgroup")).ok()?;
        cgroups
            .lines()
            .any(|l| l.ends_with(&format!("/{id}")))
            .then_some(pid)
    })
}

/// containerd SIGKILLed under a running pod: the server starts it again, the pod's
/// container keeps running untouched, exec reaches it, its exit is still seen (killed
/// from the host, it restarts), and a new pod starts.
fn containerd_restart_is_survived(k1s: &K1s, k: &Kubectl) {
    apply(
        k1s,
        k,
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
        pod_json(k1s, k, "keeper").filter(|p| p["status"]["phase"] == "Running")
    });
    let id = container_status(&before, "sleeper").expect("status")["containerID"].clone();
    let data = k1s.data_dir().to_string_lossy().into_owned();
    let old = containerd_pid(&data).unwrap_or_else(|| panic!("no containerd serving {data}"));
    let killed = Command::new("kill")
        .args(["-KILL", &old.to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let new = eventually(Duration::from_secs(30), "containerd started again", || {
        containerd_pid(&data).filter(|p| *p != old)
    });
    assert_ne!(new, old);
    // Exec goes through containerd: it answers once the kubelet is connected again.
    let out = eventually(Duration::from_secs(60), "exec into keeper", || {
        let out = k1s.kubectl(k, &["exec", "keeper", "--", "echo", "still-here"]);
        (out.code == 0).then_some(out.stdout)
    });
    assert_eq!(out.trim(), "still-here");
    std::thread::sleep(Duration::from_secs(3));
    let after = pod_json(k1s, k, "keeper").expect("keeper");
    let st = container_status(&after, "sleeper").expect("status");
    assert_eq!(after["status"]["phase"], "Running", "{after}");
    assert_eq!(st["containerID"], id, "the same container runs: {st}");
    assert_eq!(st["restartCount"], 0, "{st}");
    assert!(st["state"]["running"].is_object(), "{st}");
    assert!(
        k1s.log().contains("containerd exited; restarting it"),
        "the supervisor says it restarted containerd"
    );

    // Its process SIGKILLed from the host by pid: the new containerd reports the exit to
    // the kubelet, which restarts the container.
    let cid = id
        .as_str()
        .and_then(|i| i.strip_prefix("containerd://"))
        .expect("containerd id")
        .to_string();
    let pid = pid_in_cgroup_of(&cid).unwrap_or_else(|| panic!("no process of container {cid}"));
    let killed = Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let pod = eventually(WAIT, "keeper restarted after its kill", || {
        pod_json(k1s, k, "keeper").filter(|p| {
            restarts(p, "sleeper") == 1
                && container_status(p, "sleeper").is_some_and(|s| s["state"]["running"].is_object())
        })
    });
    let st = container_status(&pod, "sleeper").expect("status");
    assert_eq!(st["lastState"]["terminated"]["exitCode"], 137, "{st}");
    assert_eq!(st["lastState"]["terminated"]["reason"], "Error", "{st}");
    assert_eq!(st["lastState"]["terminated"]["containerID"], id, "{st}");

    apply(
        k1s,
        k,
        "after",
        r#"apiVersion: v1
kind: Pod
metadata: {name: after}
spec:
  restartPolicy: Never
  containers:
  - name: after
    image: busybox
    imagePullPolicy: IfNotPresent
    command: ["echo", "started after containerd restarted"]
"#,
    );
    let pod = eventually(WAIT, "after Succeeded", || {
        pod_json(k1s, k, "after").filter(|p| p["status"]["phase"] == "Succeeded")
    });
    let st = container_status(&pod, "after").expect("status");
    assert_eq!(st["state"]["terminated"]["reason"], "Completed", "{st}");
    let logs = k1s.kubectl(k, &["logs", "after"]);
    assert_eq!(logs.ok(), "started after containerd restarted\n");
}

/// A Guaranteed pod and a system-node-critical one run (their oom_score_adj is -997,
/// which a host without CAP_SYS_RESOURCE refuses: the kubelet then keeps it at its own,
/// as containerd's restrict_oom_score_adj does, instead of failing the start).
fn guaranteed_and_critical_pods_run(k1s: &K1s, k: &Kubectl) {
    apply(
        k1s,
        k,
        "guaranteed",
        r#"apiVersion: v1
kind: Pod
metadata: {name: guaranteed}
spec:
  containers:
  - name: main
    image: busybox
    imagePullPolicy: IfNotPresent
    command: ["sleep", "3600"]
    resources:
      limits: {cpu: 100m, memory: 64Mi}
---
apiVersion: v1
kind: Pod
metadata: {name: critical}
spec:
  priorityClassName: system-node-critical
  containers:
  - name: main
    image: busybox
    imagePullPolicy: IfNotPresent
    command: ["sleep", "3600"]
"#,
    );
    for name in ["guaranteed", "critical"] {
        let pod = eventually(WAIT, &format!("{name} Running"), || {
            pod_json(k1s, k, name).filter(|p| p["status"]["phase"] == "Running")
        });
        if name == "guaranteed" {
            assert_eq!(pod["status"]["qosClass"], "Guaranteed", "{pod}");
        }
        let adj = k1s.kubectl(k, &["exec", name, "--", "cat", "/proc/1/oom_score_adj"]);
        let adj: i32 = adj.stdout.trim().parse().unwrap_or(i32::MAX);
        assert!(adj <= 0, "{name}: oom_score_adj {adj}");
    }
}

#[test]
fn workloads_run_on_the_embedded_containerd() {
    let k1s = K1s::start_with_agent(&[]);
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
        s.spawn(|| interactive_shells(&k1s, &k));
        s.spawn(|| deployment_with_probes(&k1s, &k));
        s.spawn(|| exec_liveness_restarts(&k1s, &k));
        s.spawn(|| memory_hog_is_oom_killed(&k1s, &k));
        s.spawn(|| missing_image_backs_off(&k1s, &k));
        s.spawn(|| guaranteed_and_critical_pods_run(&k1s, &k));
    });
    containerd_restart_is_survived(&k1s, &k);
}

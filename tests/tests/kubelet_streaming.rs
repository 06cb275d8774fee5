//! `kubectl logs`, `exec`, `attach`, `cp` and `port-forward` end to end: the real k1s
//! server proxies them to a kubelet server this test hosts (k1s-kubelet's `server`, with
//! the TLS the cluster CA issues) over a test runtime that runs "containers" as host
//! processes, with the oldest kubectl (SPDY) and the newest (WebSocket).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use k1s_e2e::{K1s, Kubectl, eventually, kubectl_versions};
use k1s_kubelet::runtime::{
    Container, ContainerConfig, ContainerRuntime, ContainerState, Image, PullPolicy,
    RegistryCredential, RuntimeError, RuntimeResult, RuntimeVersion, Sandbox, SandboxConfig,
    StreamRequest, StreamSession, labels,
};
use k1s_kubelet::server;
use serde_json::json;

const NS: &str = "default";
const NODE: &str = "stream-node";

/// A runtime whose containers are host processes: exec runs the command on the host in the
/// container's folder; logs are files the test writes; the sandbox has no netns (so
/// port-forward reaches the host's loopback).
struct HostRuntime {
    dir: PathBuf,
    containers: parking_lot::Mutex<Vec<Container>>,
}

fn pod_labels(pod: &str, container: Option<(&str, u32)>) -> BTreeMap<String, String> {
    let mut l = BTreeMap::new();
    l.insert(labels::POD_NAMESPACE.to_string(), NS.to_string());
    l.insert(labels::POD_NAME.to_string(), pod.to_string());
    l.insert(labels::POD_UID.to_string(), format!("uid-{pod}"));
    if let Some((name, attempt)) = container {
        l.insert(labels::CONTAINER_NAME.to_string(), name.to_string());
        l.insert(labels::CONTAINER_ATTEMPT.to_string(), attempt.to_string());
    }
    l
}

impl HostRuntime {
    fn add(&self, pod: &str, name: &str, attempt: u32, state: ContainerState) -> PathBuf {
        let log_path = self.dir.join(format!("{pod}-{name}-{attempt}.log"));
        std::fs::write(&log_path, "").expect("log file");
        self.containers.lock().push(Container {
            id: format!("{pod}-{name}-{attempt}"),
            sandbox_id: format!("sandbox-{pod}"),
            labels: pod_labels(pod, Some((name, attempt))),
            image: "sha256:test".into(),
            image_ref: "busybox".into(),
            state,
            created_at: SystemTime::now(),
            started_at: Some(SystemTime::now()),
            finished_at: None,
            exit_code: None,
            reason: None,
            log_path: log_path.clone(),
        });
        log_path
    }

    fn spawn(&self, argv: &[String], request: &StreamRequest) -> RuntimeResult<StreamSession> {
        let (program, args) = argv
            .split_first()
            .ok_or_else(|| RuntimeError::Runtime("empty command".into()))?;
        let mut child = tokio::process::Command::new(program)
            .args(args)
            .current_dir(&self.dir)
            .stdin(if request.stdin {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| RuntimeError::Runtime(format!("{program}: {e}")))?;
        let stdin = child
            .stdin
            .take()
            .map(|s| Box::pin(s) as std::pin::Pin<Box<dyn tokio::io::AsyncWrite + Send>>);
        let stdout = child
            .stdout
            .take()
            .map(|s| Box::pin(s) as std::pin::Pin<Box<dyn tokio::io::AsyncRead + Send>>);
        let stderr = child
            .stderr
            .take()
            .map(|s| Box::pin(s) as std::pin::Pin<Box<dyn tokio::io::AsyncRead + Send>>);
        Ok(StreamSession {
            stdin,
            stdout: if request.stdout { stdout } else { None },
            stderr: if request.stderr { stderr } else { None },
            resize: None,
            exit: Box::pin(async move {
                let status = child
                    .wait()
                    .await
                    .map_err(|e| RuntimeError::Runtime(e.to_string()))?;
                Ok(status.code().unwrap_or(137))
            }),
        })
    }
}

#[async_trait]
impl ContainerRuntime for HostRuntime {
    async fn version(&self) -> RuntimeResult<RuntimeVersion> {
        Ok(RuntimeVersion {
            name: "host".into(),
            version: "0".into(),
        })
    }
    async fn ensure_image(
        &self,
        image: &str,
        _: PullPolicy,
        _: &[RegistryCredential],
    ) -> RuntimeResult<Image> {
        Err(RuntimeError::NotFound(image.into()))
    }
    async fn list_images(&self) -> RuntimeResult<Vec<Image>> {
        Ok(Vec::new())
    }
    async fn remove_image(&self, _: &str) -> RuntimeResult<()> {
        Ok(())
    }
    async fn run_sandbox(&self, _: &SandboxConfig) -> RuntimeResult<Sandbox> {
        Err(RuntimeError::Runtime("not in this test".into()))
    }
    async fn stop_sandbox(&self, _: &str) -> RuntimeResult<()> {
        Ok(())
    }
    async fn remove_sandbox(&self, _: &str) -> RuntimeResult<()> {
        Ok(())
    }
    async fn list_sandboxes(&self) -> RuntimeResult<Vec<Sandbox>> {
        let mut pods: Vec<String> = self
            .containers
            .lock()
            .iter()
            .filter_map(|c| c.labels.get(labels::POD_NAME).cloned())
            .collect();
        pods.dedup();
        Ok(pods
            .into_iter()
            .map(|p| Sandbox {
                id: format!("sandbox-{p}"),
                labels: pod_labels(&p, None),
                netns: None,
                ready: true,
                created_at: SystemTime::now(),
            })
            .collect())
    }
    async fn create_container(&self, _: &Sandbox, _: &ContainerConfig) -> RuntimeResult<String> {
        Err(RuntimeError::Runtime("not in this test".into()))
    }
    async fn start_container(&self, _: &str) -> RuntimeResult<()> {
        Ok(())
    }
    async fn stop_container(&self, _: &str, _: i64) -> RuntimeResult<()> {
        Ok(())
    }
    async fn remove_container(&self, _: &str) -> RuntimeResult<()> {
        Ok(())
    }
    async fn list_containers(&self) -> RuntimeResult<Vec<Container>> {
        Ok(self.containers.lock().clone())
    }
    async fn exec(&self, _: &str, request: &StreamRequest) -> RuntimeResult<StreamSession> {
        self.spawn(&request.command, request)
    }
    async fn attach(&self, _: &str, request: &StreamRequest) -> RuntimeResult<StreamSession> {
        // The "container's own process": one that greets and echoes stdin.
        self.spawn(
            &["sh".into(), "-c".into(), "echo attached; cat".into()],
            request,
        )
    }
}

/// A k1s server, a kubelet server on a free port with a CA-issued certificate, a Node
/// pointing at it and the test's Pods bound to it.
struct Cluster {
    k1s: K1s,
    runtime: Arc<HostRuntime>,
    _rt: tokio::runtime::Runtime,
    scratch: tempfile::TempDir,
}

fn log_line(stream: &str, text: &str) -> String {
    let ts = jiff::Timestamp::now();
    format!("{ts} {stream} F {text}\n")
}

fn append(path: &Path, text: &str) {
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .expect("open log");
    f.write_all(text.as_bytes()).expect("append log");
}

impl Cluster {
    fn start() -> Cluster {
        let k1s = K1s::start();
        let scratch = tempfile::tempdir().expect("scratch dir");
        let runtime = Arc::new(HostRuntime {
            dir: scratch.path().to_path_buf(),
            containers: parking_lot::Mutex::new(Vec::new()),
        });
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio");
        let signer = k1s_pki::CaSigner::load(k1s.data_dir()).expect("cluster CA");
        let (cert, key) = signer
            .issue_serving_cert(NODE, &["127.0.0.1".to_string()])
            .expect("kubelet serving cert");
        let tls = k1s_pki::kubelet_server_tls_config(signer.ca_der(), &cert, &key).expect("tls");
        let port = rt.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("listen");
            let port = listener.local_addr().expect("addr").port();
            server::serve(
                server::ServerConfig {
                    listener,
                    tls,
                    authorizer: server::Authorizer::default(),
                },
                runtime.clone(),
            );
            port
        });
        let client = rt.block_on(k1s.client());
        rt.block_on(async {
            let nodes: kube::Api<k8s_openapi::api::core::v1::Node> = kube::Api::all(client.clone());
            let node = serde_json::from_value(json!({
                "apiVersion": "v1", "kind": "Node", "metadata": {"name": NODE}
            }))
            .expect("node");
            nodes
                .create(&Default::default(), &node)
                .await
                .expect("create node");
            nodes
                .patch_status(
                    NODE,
                    &Default::default(),
                    &kube::api::Patch::Merge(json!({"status": {
                        "addresses": [{"type": "InternalIP", "address": "127.0.0.1"},
                                      {"type": "Hostname", "address": NODE}],
                        "daemonEndpoints": {"kubeletEndpoint": {"Port": port}},
                    }})),
                )
                .await
                .expect("node status");
        });
        Cluster {
            k1s,
            runtime,
            _rt: rt,
            scratch,
        }
    }

    /// Creates a Running pod with `containers` on the node; returns each container's log.
    fn pod(&self, name: &str, containers: &[&str], node: Option<&str>) -> Vec<PathBuf> {
        let client = self._rt.block_on(self.k1s.client());
        let specs: Vec<_> = containers
            .iter()
            .map(|c| json!({"name": c, "image": "busybox"}))
            .collect();
        let mut spec = json!({"containers": specs});
        if let Some(n) = node {
            spec["nodeName"] = json!(n);
        }
        self._rt.block_on(async {
            let pods: kube::Api<k8s_openapi::api::core::v1::Pod> =
                kube::Api::namespaced(client, NS);
            let pod = serde_json::from_value(json!({
                "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec
            }))
            .expect("pod");
            pods.create(&Default::default(), &pod)
                .await
                .expect("create pod");
            if node.is_some() {
                let statuses: Vec<_> = containers
                    .iter()
                    .map(|c| json!({"name": c, "image": "busybox", "imageID": "", "ready": true,
                        "restartCount": 0, "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}}))
                    .collect();
                pods.patch_status(
                    name,
                    &Default::default(),
                    &kube::api::Patch::Merge(json!({"status": {
                        "phase": "Running", "hostIP": "127.0.0.1", "containerStatuses": statuses,
                    }})),
                )
                .await
                .expect("pod status");
            }
        });
        if node.is_none() {
            return Vec::new();
        }
        containers
            .iter()
            .map(|c| self.runtime.add(name, c, 0, ContainerState::Running))
            .collect()
    }

    fn kubectl(&self, k: &Kubectl, args: &[&str]) -> k1s_e2e::Run {
        self.k1s.kubectl_in(k, NS, args)
    }
}

fn scenario(k: &Kubectl) {
    let c = Cluster::start();
    let logs = c.pod("app", &["main"], Some(NODE));
    let log = &logs[0];
    for i in 1..=5 {
        append(log, &log_line("stdout", &format!("line {i}")));
    }
    append(log, &log_line("stderr", "an error line"));

    // logs, --tail, --timestamps
    let out = c.kubectl(k, &["logs", "app"]);
    assert_eq!(
        out.ok(),
        "line 1\nline 2\nline 3\nline 4\nline 5\nan error line\n",
        "{k}"
    );
    let out = c.kubectl(k, &["logs", "app", "--tail=2"]);
    assert_eq!(out.ok(), "line 5\nan error line\n", "{k}");
    let out = c.kubectl(k, &["logs", "app", "--tail=1", "--timestamps"]);
    let line = out.ok().trim_end().to_string();
    let (ts, text) = line.split_once(' ').expect("timestamped line");
    assert!(ts.parse::<jiff::Timestamp>().is_ok(), "{k}: {line}");
    assert_eq!(text, "an error line");
    let out = c.kubectl(k, &["logs", "app", "--since=1h"]);
    assert_eq!(out.ok().lines().count(), 6, "{k}");
    let out = c.kubectl(k, &["logs", "app", "--limit-bytes=8"]);
    assert_eq!(out.ok(), "line 1\nl", "{k}");

    // --previous without a previous instance: upstream's 400.
    let out = c.kubectl(k, &["logs", "app", "--previous"]);
    assert!(
        out.fails()
            .contains("previous terminated container \"main\" in pod \"app\" not found"),
        "{k}: {}",
        out.stderr
    );
    // With one, its log.
    let old = c.runtime.add("app", "main", 1, ContainerState::Running);
    append(&old, &log_line("stdout", "restarted"));
    assert_eq!(c.kubectl(k, &["logs", "app"]).ok(), "restarted\n", "{k}");
    assert_eq!(
        c.kubectl(k, &["logs", "app", "--previous", "--tail=1"])
            .ok(),
        "an error line\n",
        "{k}"
    );

    // -f: lines appended while following arrive; the stream ends when the container does.
    let mut follow = c
        .k1s
        .kubectl_spawn(k, &["-n", NS, "logs", "-f", "app", "--tail=1"]);
    let mut reader = BufReader::new(follow.stdout.take().expect("stdout"));
    let mut first = String::new();
    reader.read_line(&mut first).expect("read");
    assert_eq!(first, "restarted\n", "{k}");
    append(&old, &log_line("stdout", "appended while following"));
    let mut next = String::new();
    reader.read_line(&mut next).expect("read");
    assert_eq!(next, "appended while following\n", "{k}");
    c.runtime.containers.lock().iter_mut().for_each(|ct| {
        if ct.id == "app-main-1" {
            ct.state = ContainerState::Exited;
        }
    });
    let status = eventually(Duration::from_secs(15), "logs -f to end", || {
        follow.try_wait().ok().flatten()
    });
    assert!(status.success(), "{k}: logs -f ended with {status}");
    c.runtime.containers.lock().iter_mut().for_each(|ct| {
        if ct.id == "app-main-1" {
            ct.state = ContainerState::Running;
        }
    });

    // Container errors as upstream words them.
    let two = c.pod("two", &["a", "b"], Some(NODE));
    append(&two[0], &log_line("stdout", "from a"));
    append(&two[1], &log_line("stderr", "from b"));
    let out = c.kubectl(k, &["logs", "two", "--all-containers"]);
    // Newer kubectl reads the containers concurrently: any order.
    let mut lines: Vec<&str> = out.ok().lines().collect();
    lines.sort();
    assert_eq!(lines, ["from a", "from b"], "{k}");
    let out = c.kubectl(k, &["logs", "two", "-c", "b"]);
    assert_eq!(out.ok(), "from b\n", "{k}");
    // kubectl picks the first container itself; the API's own answer without one:
    let out = c.kubectl(
        k,
        &["get", "--raw", "/api/v1/namespaces/default/pods/two/log"],
    );
    assert!(
        out.fails()
            .contains("a container name must be specified for pod two, choose one of: [a b]"),
        "{k}: {}",
        out.stderr
    );
    let out = c.kubectl(k, &["logs", "two", "-c", "nope"]);
    assert!(
        out.fails()
            .contains("container nope is not valid for pod two"),
        "{k}: {}",
        out.stderr
    );
    let out = c.kubectl(k, &["logs", "missing"]);
    assert!(
        out.fails().contains("pods \"missing\" not found"),
        "{k}: {}",
        out.stderr
    );
    c.pod("pending", &["main"], None);
    let out = c.kubectl(k, &["exec", "pending", "--", "true"]);
    assert!(
        out.fails()
            .contains("pod pending does not have a host assigned"),
        "{k}: {}",
        out.stderr
    );

    // exec: output, stderr, the exit code, stdin.
    let out = c.kubectl(
        k,
        &["exec", "app", "--", "sh", "-c", "echo out; echo err >&2"],
    );
    assert_eq!(out.ok(), "out\n", "{k}");
    assert!(out.stderr.contains("err"), "{k}: {}", out.stderr);
    let out = c.kubectl(k, &["exec", "app", "--", "sh", "-c", "exit 3"]);
    assert_eq!(out.code, 3, "{k}: {out:?}");
    let out = c.k1s.kubectl_with(
        k,
        &[
            "-n",
            NS,
            "exec",
            "-i",
            "app",
            "--",
            "sh",
            "-c",
            "tr a-z A-Z",
        ],
        Some("hello from stdin\n"),
        &[],
    );
    assert_eq!(out.ok(), "HELLO FROM STDIN\n", "{k}");
    let out = c.kubectl(k, &["exec", "two", "-c", "b", "--", "echo", "in b"]);
    assert_eq!(out.ok(), "in b\n", "{k}");

    // With a terminal (kubectl wants one on its own stdin: `script` gives it a pty): the
    // tty flag and the resize stream reach the kubelet; the test runtime has no pty of its
    // own, so the command sees none.
    let cmd = format!(
        "{} --kubeconfig {} -n {NS} exec -it app -- sh -c 'echo tty-session'",
        k.path.display(),
        c.k1s.kubeconfig().display()
    );
    let out = std::process::Command::new("timeout")
        .args(["30", "script", "-qec", &cmd, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .expect("script");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("tty-session"),
        "{k}: {text} {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // attach
    let out = c.kubectl(k, &["attach", "app"]);
    assert!(out.stdout.contains("attached"), "{k}: {out:?}");

    // cp in and out (tar through exec).
    let local = c.k1s.write_file("cp-in.txt", "copied in\n");
    let remote_dir = c.scratch.path().join(format!("cp-{}", k.minor));
    std::fs::create_dir_all(&remote_dir).expect("dir");
    let remote = remote_dir.join("in.txt");
    let dest = format!("app:{}", remote.display());
    c.kubectl(k, &["cp", local.to_str().expect("path"), &dest])
        .ok();
    assert_eq!(
        std::fs::read_to_string(&remote).expect("copied file"),
        "copied in\n",
        "{k}"
    );
    std::fs::write(remote_dir.join("out.txt"), "copied out\n").expect("write");
    let back = c.k1s.dir().join(format!("cp-out-{}.txt", k.minor));
    let src = format!("app:{}", remote_dir.join("out.txt").display());
    c.kubectl(k, &["cp", &src, back.to_str().expect("path")])
        .ok();
    assert_eq!(
        std::fs::read_to_string(&back).expect("copied back"),
        "copied out\n",
        "{k}"
    );

    // port-forward: a TCP round trip to a listener in the "pod" (the host, no netns).
    let echo = std::net::TcpListener::bind("127.0.0.1:0").expect("echo listener");
    let echo_port = echo.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for s in echo.incoming() {
            let Ok(mut s) = s else { return };
            std::thread::spawn(move || {
                let mut buf = [0u8; 1024];
                while let Ok(n) = s.read(&mut buf) {
                    if n == 0 || s.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    let mut pf = c.k1s.kubectl_spawn(
        k,
        &[
            "-n",
            NS,
            "port-forward",
            "pod/app",
            &format!(":{echo_port}"),
        ],
    );
    let mut pf_out = BufReader::new(pf.stdout.take().expect("stdout"));
    let mut line = String::new();
    pf_out.read_line(&mut line).expect("port-forward output");
    // "Forwarding from 127.0.0.1:PORT -> ECHO"
    let local_port: u16 = line
        .split("127.0.0.1:")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("{k}: port-forward said {line:?}"));
    for round in 0..2 {
        let mut conn = std::net::TcpStream::connect(("127.0.0.1", local_port)).expect("connect");
        conn.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let msg = format!("ping {round} through port-forward");
        conn.write_all(msg.as_bytes()).expect("write");
        let mut got = vec![0u8; msg.len()];
        conn.read_exact(&mut got).expect("echo back");
        assert_eq!(String::from_utf8_lossy(&got), msg, "{k}");
    }
    let _ = pf.kill();
    let _ = pf.wait();
}

fn kubectl(minor: u32) -> Kubectl {
    kubectl_versions()
        .into_iter()
        .find(|k| k.minor == minor)
        .unwrap_or_else(|| panic!("kubectl 1.{minor} is not installed (scripts/install-kubectl)"))
}

#[test]
fn streaming_with_the_oldest_kubectl_over_spdy() {
    scenario(&kubectl(27));
}

#[test]
fn streaming_with_kubectl_1_30_websocket_exec_spdy_port_forward() {
    scenario(&kubectl(30));
}

#[test]
fn streaming_with_the_newest_kubectl_over_websocket() {
    scenario(&kubectl(35));
}

#[test]
fn the_kubelet_refuses_clients_without_the_apiservers_certificate() {
    let c = Cluster::start();
    let node: serde_json::Value = serde_json::from_str(
        c.kubectl(&kubectl(35), &["get", "node", NODE, "-o", "json"])
            .ok(),
    )
    .expect("node json");
    let port = node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"]
        .as_u64()
        .expect("port");
    let files = c.k1s.tls_files();
    // No client certificate: 401.
    let out = std::process::Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert"])
        .arg(&files.ca)
        .arg(format!("https://127.0.0.1:{port}/healthz"))
        .output()
        .expect("curl");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "401");
    // A client certificate of the cluster that is neither the API server's nor an admin's.
    let signer = k1s_pki::CaSigner::load(c.k1s.data_dir()).expect("CA");
    let (cert, key) = signer
        .issue_client_cert("someone", &["developers"])
        .expect("cert");
    let cert_path = c.k1s.write_file("someone.crt", &cert);
    let key_path = c.k1s.write_file("someone.key", &key);
    let out = std::process::Command::new("curl")
        .args(["-s", "-w", "\n%{http_code}", "--cacert"])
        .arg(&files.ca)
        .arg("--cert")
        .arg(&cert_path)
        .arg("--key")
        .arg(&key_path)
        .arg(format!("https://127.0.0.1:{port}/healthz"))
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.ends_with("403"), "{text}");
    assert!(text.contains("Forbidden (user=someone"), "{text}");
    // The admin (system:masters) may.
    let out = std::process::Command::new("curl")
        .args(["-s", "--cacert"])
        .arg(&files.ca)
        .arg("--cert")
        .arg(&files.cert)
        .arg("--key")
        .arg(&files.key)
        .arg(format!("https://127.0.0.1:{port}/healthz"))
        .output()
        .expect("curl");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ok");
}

#[test]
fn streaming_with_every_other_kubectl() {
    // 1.28/1.29 speak SPDY, 1.30 switches exec to WebSocket, 1.31 port-forward too.
    for k in kubectl_versions()
        .into_iter()
        .filter(|k| ![27, 30, 35].contains(&k.minor))
    {
        scenario(&k);
    }
}

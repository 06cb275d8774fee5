//! The containerd runtime against a real embedded containerd (as root, with containerd and
//! runc installed: `apt-get install containerd runc`; the test fails saying so otherwise).
//! One containerd in a temp dir with its own socket; the busybox image comes from
//! scripts/build-test-images (cached under the target dir).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use k1s_kubelet::containerd::images::import_archive;
use k1s_kubelet::containerd::{ContainerdRuntime, RuntimeOptions, Supervisor, SupervisorConfig};
use k1s_kubelet::runtime::{
    Container, ContainerConfig, ContainerRuntime, ContainerState, LinuxConfig, PullPolicy,
    RuntimeError, Sandbox, SandboxConfig, StreamRequest, TerminalSize, labels,
};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// Builds (once, cached under the target dir) the test images; answers their dir.
fn test_images() -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/build-test-images");
    // Keyed on the script (FNV-1a over its bytes): images of an older script are not reused.
    let fingerprint = std::fs::read(&script)
        .unwrap_or_default()
        .iter()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
        });
    let out =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("k1s-test-images-{fingerprint:016x}"));
    if out.join("busybox.tar").exists() && out.join("nginx.tar").exists() {
        return out;
    }
    let status = std::process::Command::new(&script)
        .arg(&out)
        .status()
        .expect("run scripts/build-test-images");
    assert!(
        status.success(),
        "scripts/build-test-images {} failed",
        out.display()
    );
    out
}

fn require_tools() {
    for tool in ["containerd", "runc", "containerd-shim-runc-v2"] {
        let found = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
            .unwrap_or(false);
        assert!(
            found,
            "{tool} is not installed: this test needs `apt-get install containerd runc` (CI installs them in scripts/test)"
        );
    }
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test runs containers and must run as root"
    );
}

fn container_config(name: &str, argv: &[&str], logs: &Path) -> ContainerConfig {
    ContainerConfig {
        name: name.to_string(),
        attempt: 0,
        image: "docker.io/library/busybox:latest".to_string(),
        image_ref: "busybox".to_string(),
        argv: argv.iter().map(|s| s.to_string()).collect(),
        env: vec![
            ("PATH".into(), "/usr/sbin:/usr/bin:/sbin:/bin".into()),
            ("GREETING".into(), "hi".into()),
        ],
        working_dir: String::new(),
        mounts: Vec::new(),
        tty: false,
        stdin: false,
        stdin_once: false,
        log_path: logs.join(format!("{name}/0.log")),
        linux: LinuxConfig::default(),
        labels: BTreeMap::from([
            (labels::POD_NAME.to_string(), "box".to_string()),
            (labels::POD_NAMESPACE.to_string(), "default".to_string()),
            (labels::POD_UID.to_string(), "uid-1".to_string()),
            (labels::CONTAINER_NAME.to_string(), name.to_string()),
            (labels::CONTAINER_ATTEMPT.to_string(), "0".to_string()),
        ]),
    }
}

async fn container(rt: &ContainerdRuntime, id: &str) -> Container {
    rt.list_containers()
        .await
        .expect("list containers")
        .into_iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("container {id} is not listed"))
}

async fn wait_exited(rt: &ContainerdRuntime, id: &str, within: Duration) -> Container {
    let deadline = Instant::now() + within;
    loop {
        let c = container(rt, id).await;
        if c.state == ContainerState::Exited && c.reason.is_some() {
            return c;
        }
        assert!(
            Instant::now() < deadline,
            "container {id} did not exit within {within:?}: {c:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn run(rt: &ContainerdRuntime, sandbox: &Sandbox, config: &ContainerConfig) -> String {
    let id = rt
        .create_container(sandbox, config)
        .await
        .expect("create container");
    rt.start_container(&id).await.expect("start container");
    id
}

async fn wait_log(path: &Path, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.contains(needle) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{} never had {needle:?}: {text:?}",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn exec_output(
    rt: &ContainerdRuntime,
    id: &str,
    command: &[&str],
    input: Option<&[u8]>,
) -> (i32, String) {
    tokio::time::timeout(
        Duration::from_secs(15),
        exec_output_inner(rt, id, command, input),
    )
    .await
    .unwrap_or_else(|_| panic!("exec {command:?} did not end within 15s"))
}

async fn exec_output_inner(
    rt: &ContainerdRuntime,
    id: &str,
    command: &[&str],
    input: Option<&[u8]>,
) -> (i32, String) {
    let mut session = rt
        .exec(
            id,
            &StreamRequest {
                command: command.iter().map(|s| s.to_string()).collect(),
                tty: false,
                stdin: input.is_some(),
                stdout: true,
                stderr: true,
            },
        )
        .await
        .expect("exec");
    if let (Some(mut stdin), Some(input)) = (session.stdin.take(), input) {
        stdin.write_all(input).await.expect("write stdin");
        drop(stdin);
    }
    let mut out = String::new();
    if let Some(mut stdout) = session.stdout.take() {
        stdout.read_to_string(&mut out).await.expect("read stdout");
    }
    let code = session.exit.await.expect("exec exit");
    (code, out)
}

/// A docker-registry (Debian's `docker-registry`) on a free loopback port, killed on drop.
struct Registry {
    port: u16,
    child: std::process::Child,
}

impl Registry {
    fn start(tmp: &Path) -> Registry {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let dir = tmp.join("registry");
        std::fs::create_dir_all(&dir).expect("registry dir");
        let config = dir.join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
                dir.join("data").display()
            ),
        )
        .expect("registry config");
        let child = std::process::Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("run docker-registry (apt-get install docker-registry)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "docker-registry did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Registry { port, child }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// GET / on port 80 from inside a pod's network namespace.
/// Runs `ip link set lo up` in the network namespace at `netns`, as the pod network does.
fn loopback_up_in_netns(netns: &Path) -> std::io::Result<()> {
    let netns = netns.to_path_buf();
    std::thread::spawn(move || {
        let file = std::fs::File::open(&netns)?;
        nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
            .map_err(std::io::Error::from)?;
        // A child forked from this thread starts in its network namespace.
        let status = std::process::Command::new("ip")
            .args(["link", "set", "lo", "up"])
            .status()?;
        if status.success() {
            Ok(())
        } else {
            Err(std::io::Error::other(format!(
                "ip link set lo up: {status}"
            )))
        }
    })
    .join()
    .map_err(|_| std::io::Error::other("the netns thread panicked"))?
}

fn http_get_in_netns(netns: &Path) -> std::io::Result<String> {
    let netns = netns.to_path_buf();
    std::thread::spawn(move || {
        use std::io::{Read as _, Write as _};
        let file = std::fs::File::open(&netns)?;
        nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
            .map_err(std::io::Error::from)?;
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", 80))?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        stream.write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
        let mut body = String::new();
        stream.read_to_string(&mut body)?;
        Ok(body)
    })
    .join()
    .map_err(|_| std::io::Error::other("the netns thread panicked"))?
}

/// Whatever a failed run left: processes started for this containerd (its shims and their
/// containers), mounts under the temp dir, the test's cgroups.
struct Leftovers {
    dir: PathBuf,
    cgroup_parent: String,
}

impl Drop for Leftovers {
    fn drop(&mut self) {
        let needle = self.dir.to_string_lossy().into_owned();
        let mut procs: Vec<(i32, i32, String)> = Vec::new();
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, r)| r.split_whitespace().nth(1))
                .and_then(|p| p.parse().ok())
                .unwrap_or(0);
            procs.push((pid, ppid, String::from_utf8_lossy(&cmdline).into_owned()));
        }
        for (pid, _, cmdline) in procs.iter().filter(|(_, _, c)| c.contains(&needle)) {
            let _ = cmdline;
            for (child, _, _) in procs.iter().filter(|(_, ppid, _)| ppid == pid) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(*child),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(*pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut mounts: Vec<&str> = mountinfo
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|m| m.starts_with(&needle))
            .collect();
        mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in mounts {
            let _ = nix::mount::umount2(m, nix::mount::MntFlags::MNT_DETACH);
        }
        for controller in std::fs::read_dir("/sys/fs/cgroup")
            .into_iter()
            .flatten()
            .flatten()
        {
            let dir = controller
                .path()
                .join(self.cgroup_parent.trim_start_matches('/'));
            for child in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                if child.path().is_dir() {
                    let _ = std::fs::remove_dir(child.path());
                }
            }
            let _ = std::fs::remove_dir(&dir);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn containerd_runs_pods() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("K1S_LOG")
                .unwrap_or_else(|_| "k1s_kubelet=debug".into()),
        )
        .with_test_writer()
        .try_init();
    require_tools();
    let images = test_images();
    let tmp = tempfile::Builder::new()
        .prefix("k1s-ctd")
        .tempdir_in("/tmp")
        .expect("tempdir");
    let cgroup_parent = format!("/k1s-test-{}", std::process::id());
    let _leftovers = Leftovers {
        dir: tmp.path().to_path_buf(),
        cgroup_parent: cgroup_parent.clone(),
    };
    let supervisor = Supervisor::start(SupervisorConfig {
        dir: tmp.path().join("containerd"),
        binary: PathBuf::from("containerd"),
        log_level: None,
    })
    .await
    .expect("start the embedded containerd");
    let result = tokio::time::timeout(
        Duration::from_secs(150),
        scenario(&supervisor, tmp.path(), &cgroup_parent),
    )
    .await;
    let log =
        std::fs::read_to_string(tmp.path().join("containerd/containerd.log")).unwrap_or_default();
    supervisor.stop().await;
    let _ = images;
    match result {
        Ok(()) => {}
        Err(_) => panic!("the scenario took longer than 150s; containerd's log:\n{log}"),
    }
}

async fn scenario(supervisor: &Supervisor, tmp: &Path, cgroup_parent: &str) {
    let options = RuntimeOptions {
        namespace: "k8s.io".into(),
        state_dir: tmp.join("state"),
        registries: Some(tmp.join("registries.yaml")),
    };
    let rt = ContainerdRuntime::connect(supervisor.socket(), options.clone())
        .await
        .expect("connect");
    let version = rt.version().await.expect("version");
    assert_eq!(version.name, "containerd");
    assert!(
        version.version.starts_with('1') || version.version.starts_with('2'),
        "{version:?}"
    );

    // Images: import, list, policies.
    let started = Instant::now();
    let names = import_archive(&rt, &test_images().join("busybox.tar"), &|_| {})
        .await
        .expect("import busybox");
    assert_eq!(names, vec!["docker.io/library/busybox:latest".to_string()]);
    eprintln!("imported busybox in {:?}", started.elapsed());
    let listed = rt.list_images().await.expect("list images");
    let busybox = listed
        .iter()
        .find(|i| {
            i.repo_tags
                .contains(&"docker.io/library/busybox:latest".to_string())
        })
        .unwrap_or_else(|| panic!("busybox is not listed: {listed:?}"));
    assert!(busybox.id.starts_with("sha256:"));
    assert_eq!(busybox.config.cmd, vec!["sh".to_string()]);
    // A docker archive (as `docker save` writes it, made here by skopeo) in the airgap dir.
    let airgap = tmp.join("agent-images");
    std::fs::create_dir_all(&airgap).expect("airgap dir");
    let saved = std::process::Command::new("skopeo")
        .args(["copy", "--quiet"])
        .arg(format!(
            "oci-archive:{}",
            test_images().join("busybox.tar").display()
        ))
        .arg(format!(
            "docker-archive:{}:busybox:saved",
            airgap.join("saved.tar").display()
        ))
        .status()
        .expect("run skopeo (apt-get install skopeo)");
    assert!(saved.success(), "skopeo copy to a docker archive failed");
    let imported = k1s_kubelet::containerd::images::import_dir(&rt, &airgap).await;
    assert_eq!(
        imported,
        vec!["docker.io/library/busybox:saved".to_string()]
    );
    let saved = rt
        .ensure_image("busybox:saved", PullPolicy::Never, &[])
        .await
        .expect("the saved image");
    assert_eq!(saved.config.cmd, vec!["sh".to_string()]);
    rt.remove_image("busybox:saved")
        .await
        .expect("remove the saved image");

    let ensured = rt
        .ensure_image("busybox", PullPolicy::IfNotPresent, &[])
        .await
        .expect("busybox is present");
    assert_eq!(ensured.id, busybox.id);
    let never = rt.ensure_image("nothere:v1", PullPolicy::Never, &[]).await;
    assert!(
        matches!(never, Err(RuntimeError::ImageNeverPull(_))),
        "{never:?}"
    );
    assert_eq!(
        never.err().map(|e| e.to_string()).unwrap_or_default(),
        "image nothere:v1 is not present with pull policy of Never"
    );
    let pulled = rt
        .ensure_image("nothere:v1", PullPolicy::IfNotPresent, &[])
        .await;
    assert!(
        matches!(pulled, Err(RuntimeError::Pull { .. })),
        "{pulled:?}"
    );

    // A sandbox.
    let sandbox = rt
        .run_sandbox(&SandboxConfig {
            pod_name: "box".into(),
            pod_namespace: "default".into(),
            pod_uid: "uid-1".into(),
            hostname: "box1".into(),
            host_network: false,
            host_ipc: false,
            host_pid: false,
            cgroup_parent: cgroup_parent.to_string(),
            labels: BTreeMap::from([
                (labels::POD_NAME.to_string(), "box".to_string()),
                (labels::POD_UID.to_string(), "uid-1".to_string()),
            ]),
        })
        .await
        .expect("run sandbox");
    let netns = sandbox.netns.clone().expect("a netns");
    assert!(netns.exists());
    assert!(sandbox.ready);
    // The pod network (not run here) brings loopback up when it attaches a pod.
    loopback_up_in_netns(&netns).expect("loopback up in the pod netns");
    let logs = tmp.join("logs");

    // echo hi → 0, Completed, a CRI log line.
    let echo = container_config("echo", &["sh", "-c", "echo $GREETING"], &logs);
    let id = run(&rt, &sandbox, &echo).await;
    let c = wait_exited(&rt, &id, Duration::from_secs(20)).await;
    assert_eq!(
        (c.exit_code, c.reason.as_deref()),
        (Some(0), Some("Completed")),
        "{c:?}"
    );
    assert!(c.started_at.is_some() && c.finished_at.is_some());
    assert_eq!(
        c.labels.get(labels::CONTAINER_NAME).map(String::as_str),
        Some("echo")
    );
    assert_eq!(c.sandbox_id, sandbox.id);
    let text = wait_log(&echo.log_path, "stdout F hi").await;
    let line = text.lines().next().unwrap_or_default();
    let (ts, rest) = line.split_once(' ').unwrap_or_default();
    assert_eq!(rest, "stdout F hi", "{text:?}");
    assert!(ts.len() == 30 && ts.ends_with('Z'), "{ts}");

    // seccompProfile RuntimeDefault filters the container's syscalls (and the rest works).
    let mut filtered = container_config(
        "filtered",
        &[
            "sh",
            "-c",
            "grep Seccomp: /proc/self/status; ls / >/dev/null && echo listed",
        ],
        &logs,
    );
    filtered.linux.seccomp_runtime_default = true;
    let filtered_id = run(&rt, &sandbox, &filtered).await;
    let c = wait_exited(&rt, &filtered_id, Duration::from_secs(20)).await;
    assert_eq!(c.exit_code, Some(0), "{c:?}");
    wait_log(&filtered.log_path, "stdout F Seccomp:\t2").await;
    wait_log(&filtered.log_path, "stdout F listed").await;

    // A failing command → its exit code, Error, stderr in the log.
    let fail = container_config("fail", &["sh", "-c", "echo oops >&2; exit 3"], &logs);
    let fail_id = run(&rt, &sandbox, &fail).await;
    let c = wait_exited(&rt, &fail_id, Duration::from_secs(20)).await;
    assert_eq!(
        (c.exit_code, c.reason.as_deref()),
        (Some(3), Some("Error")),
        "{c:?}"
    );
    wait_log(&fail.log_path, "stderr F oops").await;

    // A memory hog over a small limit → OOMKilled.
    let mut hog = container_config(
        "hog",
        &["sh", "-c", "a=xxxxxxxxxxxxxxxx; while :; do a=$a$a; done"],
        &logs,
    );
    hog.linux.memory_limit = Some(16 << 20);
    let hog_id = run(&rt, &sandbox, &hog).await;
    let c = wait_exited(&rt, &hog_id, Duration::from_secs(30)).await;
    assert_eq!(
        (c.exit_code, c.reason.as_deref()),
        (Some(137), Some("OOMKilled")),
        "{c:?}"
    );

    // The nginx test image serves its default page on port 80 and logs to stdout.
    let names = import_archive(&rt, &test_images().join("nginx.tar"), &|_| {})
        .await
        .expect("import nginx");
    assert_eq!(names, vec!["docker.io/library/nginx:latest".to_string()]);
    let nginx = rt
        .ensure_image("nginx:latest", PullPolicy::Never, &[])
        .await
        .expect("nginx is present");
    let mut web = container_config("web", &[], &logs);
    web.image = nginx.id.clone();
    web.image_ref = "nginx:latest".into();
    web.argv = nginx
        .config
        .entrypoint
        .iter()
        .chain(&nginx.config.cmd)
        .cloned()
        .collect();
    web.env = Vec::new();
    let web_id = run(&rt, &sandbox, &web).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let page = loop {
        match http_get_in_netns(&netns) {
            Ok(page) => break page,
            Err(e) => assert!(Instant::now() < deadline, "nginx does not answer: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        page.starts_with("HTTP/1.1 200 OK") && page.contains("Welcome to nginx!"),
        "{page}"
    );
    wait_log(&web.log_path, "\"GET / HTTP/1.0\" 200").await;
    rt.stop_container(&web_id, 5).await.expect("stop nginx");
    let c = container(&rt, &web_id).await;
    assert_eq!(
        (c.exit_code, c.reason.as_deref()),
        (Some(0), Some("Completed")),
        "nginx quits on its SIGQUIT: {c:?}"
    );

    // A long runner: exec into it, then a restarted runtime still sees it running.
    let server = container_config(
        "server",
        &[
            "sh",
            "-c",
            "trap 'echo bye; exit 0' TERM; echo ready; while :; do sleep 0.2; done",
        ],
        &logs,
    );
    let server_id = run(&rt, &sandbox, &server).await;
    wait_log(&server.log_path, "stdout F ready").await;
    assert_eq!(
        container(&rt, &server_id).await.state,
        ContainerState::Running
    );
    assert_eq!(
        exec_output(&rt, &server_id, &["cat", "/etc/hostname"], None).await,
        (0, "box1\n".to_string())
    );
    assert_eq!(
        exec_output(&rt, &server_id, &["hostname"], None).await,
        (0, "box1\n".to_string())
    );
    assert_eq!(
        exec_output(&rt, &server_id, &["cat"], Some(b"ping")).await,
        (0, "ping".to_string())
    );
    assert_eq!(
        exec_output(&rt, &server_id, &["sh", "-c", "exit 7"], None)
            .await
            .0,
        7
    );

    // An exec with a terminal: one stream, a pty, resizes reach it.
    let mut session = rt
        .exec(
            &server_id,
            &StreamRequest {
                command: vec!["sh".into(), "-c".into(), "tty; sleep 0.5; stty size".into()],
                tty: true,
                stdin: true,
                stdout: true,
                stderr: false,
            },
        )
        .await
        .expect("exec with a tty");
    assert!(session.stderr.is_none());
    let resize = session.resize.take().expect("a tty session resizes");
    resize
        .send(TerminalSize {
            width: 100,
            height: 40,
        })
        .await
        .expect("resize");
    let mut out = String::new();
    let mut stdout = session.stdout.take().expect("stdout");
    tokio::time::timeout(Duration::from_secs(10), stdout.read_to_string(&mut out))
        .await
        .expect("tty output ends")
        .expect("read");
    assert!(
        out.starts_with("/dev/pts/") && out.contains("40 100"),
        "{out:?}"
    );
    drop(session.stdin.take());
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(5), session.exit)
            .await
            .expect("exit")
            .expect("code"),
        0
    );

    rt.close();
    drop(rt);
    let rt = ContainerdRuntime::connect(supervisor.socket(), options.clone())
        .await
        .expect("reconnect");
    let again = container(&rt, &server_id).await;
    assert_eq!(again.state, ContainerState::Running, "{again:?}");
    let sandboxes = rt.list_sandboxes().await.expect("list sandboxes");
    let found = sandboxes
        .iter()
        .find(|s| s.id == sandbox.id)
        .expect("the sandbox after a restart");
    assert!(found.ready);
    assert_eq!(found.netns.as_deref(), Some(netns.as_path()));
    assert_eq!(
        found.labels.get(labels::POD_NAME).map(String::as_str),
        Some("box")
    );
    assert_eq!(
        container(&rt, &id).await.reason.as_deref(),
        Some("Completed")
    );

    // containerd dies: the supervisor starts it again and the container runs on.
    let old_pid = supervisor.pid().expect("containerd runs");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(old_pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill containerd");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if supervisor.pid().is_some_and(|p| p != old_pid)
            && let Ok(list) = rt.list_containers().await
        {
            let c = list
                .into_iter()
                .find(|c| c.id == server_id)
                .expect("the server after containerd's restart");
            assert_eq!(c.state, ContainerState::Running, "{c:?}");
            break;
        }
        assert!(Instant::now() < deadline, "containerd did not come back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        exec_output(&rt, &server_id, &["echo", "back"], None).await,
        (0, "back\n".to_string())
    );

    // Attach sees the container's own output.
    let mut attached = rt
        .attach(
            &server_id,
            &StreamRequest {
                command: vec![],
                tty: false,
                stdin: false,
                stdout: true,
                stderr: true,
            },
        )
        .await
        .expect("attach");
    let mut attached_out = attached.stdout.take().expect("attach stdout");

    // Stop with grace: the TERM trap runs and the exit is recorded.
    let t = Instant::now();
    rt.stop_container(&server_id, 10).await.expect("stop");
    assert!(
        t.elapsed() < Duration::from_secs(8),
        "stop took {:?}",
        t.elapsed()
    );
    let c = container(&rt, &server_id).await;
    assert_eq!(
        (c.state, c.exit_code, c.reason.as_deref()),
        (ContainerState::Exited, Some(0), Some("Completed")),
        "{c:?}"
    );
    wait_log(&server.log_path, "stdout F bye").await;
    let mut seen = String::new();
    tokio::time::timeout(
        Duration::from_secs(5),
        attached_out.read_to_string(&mut seen),
    )
    .await
    .expect("attach output ends")
    .expect("read");
    assert!(seen.contains("bye"), "{seen:?}");
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(5), attached.exit)
            .await
            .expect("attach exit")
            .expect("code"),
        0
    );

    // One that ignores SIGTERM is killed after the grace period.
    let stubborn = container_config(
        "stubborn",
        &["sh", "-c", "trap '' TERM; while :; do sleep 0.2; done"],
        &logs,
    );
    let stubborn_id = run(&rt, &sandbox, &stubborn).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let t = Instant::now();
    rt.stop_container(&stubborn_id, 1)
        .await
        .expect("stop stubborn");
    assert!(t.elapsed() >= Duration::from_secs(1));
    let c = container(&rt, &stubborn_id).await;
    assert_eq!(
        (c.exit_code, c.reason.as_deref()),
        (Some(137), Some("Error")),
        "{c:?}"
    );
    rt.stop_container(&stubborn_id, 1)
        .await
        .expect("stopping twice is fine");

    // Clean up: everything goes, and again is fine.
    rt.stop_sandbox(&sandbox.id).await.expect("stop sandbox");
    assert!(
        !rt.list_sandboxes()
            .await
            .expect("list")
            .iter()
            .any(|s| s.id == sandbox.id && s.ready)
    );
    rt.remove_sandbox(&sandbox.id)
        .await
        .expect("remove sandbox");
    rt.remove_sandbox(&sandbox.id)
        .await
        .expect("removing twice is fine");
    rt.remove_container(&id)
        .await
        .expect("removing a removed container is fine");
    assert!(rt.list_containers().await.expect("list").is_empty());
    assert!(rt.list_sandboxes().await.expect("list").is_empty());
    assert!(!netns.exists());
    rt.remove_image(&busybox.id).await.expect("remove image");
    rt.remove_image("nginx").await.expect("remove nginx");
    rt.remove_image("busybox")
        .await
        .expect("removing twice is fine");
    assert!(rt.list_images().await.expect("list").is_empty());

    // Pulls: a loopback docker-registry holding busybox (copied in by skopeo) as the
    // docker.io mirror in registries.yaml.
    let registry = Registry::start(tmp);
    let copied = std::process::Command::new("skopeo")
        .args(["copy", "--quiet", "--dest-tls-verify=false"])
        .arg(format!(
            "oci-archive:{}",
            test_images().join("busybox.tar").display()
        ))
        .arg(format!(
            "docker://127.0.0.1:{}/library/busybox:latest",
            registry.port
        ))
        .status()
        .expect("run skopeo (apt-get install skopeo)");
    assert!(copied.success(), "skopeo copy failed");
    std::fs::write(
        tmp.join("registries.yaml"),
        format!(
            "mirrors:\n  docker.io:\n    endpoint:\n      - \"http://127.0.0.1:{}\"\n",
            registry.port
        ),
    )
    .expect("write registries.yaml");
    let pulled = rt
        .ensure_image("busybox", PullPolicy::Always, &[])
        .await
        .expect("pull busybox from the mirror");
    assert_eq!(pulled.id, busybox.id);
    assert_eq!(
        pulled.repo_tags,
        vec!["docker.io/library/busybox:latest".to_string()]
    );
    let missing = rt.ensure_image("nothere:v1", PullPolicy::Always, &[]).await;
    let message = missing.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(
        message.starts_with("failed to pull image nothere:v1: failed to pull and unpack image \"docker.io/library/nothere:v1\""),
        "{message}"
    );
    rt.remove_image("busybox")
        .await
        .expect("remove the pulled busybox");
    drop(registry);
}

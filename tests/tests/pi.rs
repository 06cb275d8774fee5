//! Running k1s as a service on a small host (issue 15): logs without colour codes, the
//! k3s-style config file, sd_notify readiness, `k1s check-config`, and the install and
//! uninstall scripts and the .deb (packaging/, scripts/build-deb).

use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use k1s_e2e::{K1s, free_port, k1s_binary, newest_kubectl};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or_else(|| panic!("no repository root"))
        .to_path_buf()
}

fn unique() -> String {
    format!("{:x}", std::process::id() ^ rand::random::<u32>())
        .chars()
        .take(6)
        .collect()
}

/// One `k1s server --disable-agent` started as a systemd unit would start it: flags from a
/// config file, logs to --log (and stderr), NOTIFY_SOCKET set. It says READY=1 once the
/// API answers; no log line has an escape code.
#[test]
fn config_file_log_file_and_sd_notify() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
    let port = free_port();
    let kubeconfig = dir.path().join("etc/k1s.yaml");
    let log = dir.path().join("log/k1s.log");
    let config = dir.path().join("etc/config.yaml");
    std::fs::create_dir_all(dir.path().join("etc/config.yaml.d")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        &config,
        format!(
            "disable-agent: true\nbind-address: 127.0.0.1\nhttps-listen-port: {port}\n\
             write-kubeconfig: {}\nwrite-kubeconfig-mode: \"600\"\nlog: {}\n\
             alsologtostderr: true\nno-such-flag: 1\n",
            kubeconfig.display(),
            log.display()
        ),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    // A drop-in replaces a key of the main file.
    std::fs::write(
        dir.path().join("etc/config.yaml.d/10-mode.yaml"),
        "write-kubeconfig-mode: \"640\"\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let notify_path = dir.path().join("notify.sock");
    let notify = UnixDatagram::bind(&notify_path).unwrap_or_else(|e| panic!("notify socket: {e}"));
    notify
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap_or_else(|e| panic!("{e}"));
    let stderr_path = dir.path().join("stderr.txt");
    let stderr = std::fs::File::create(&stderr_path).unwrap_or_else(|e| panic!("{e}"));
    let mut child = Command::new(k1s_binary())
        .args(["server", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .env("NOTIFY_SOCKET", &notify_path)
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start k1s: {e}"));
    let mut buf = [0u8; 512];
    let got = notify.recv(&mut buf);
    let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
    let message = match got {
        Ok(n) => String::from_utf8_lossy(&buf[..n]).into_owned(),
        Err(e) => {
            let _ = child.kill();
            panic!("no sd_notify message: {e}\n{}", read_log());
        }
    };
    // READY=1 comes only once the API answers.
    let k = newest_kubectl();
    let out = Command::new(&k.path)
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["get", "--raw", "/readyz"])
        .output()
        .unwrap_or_else(|e| panic!("kubectl: {e}"));
    let _ = child.kill();
    let _ = child.wait();
    assert!(message.lines().any(|l| l == "READY=1"), "{message:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok", "{out:?}");
    // The drop-in's mode, from config.yaml.d.
    let mode = std::fs::metadata(&kubeconfig)
        .unwrap_or_else(|e| panic!("kubeconfig: {e}"))
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o640);
    let file_log = read_log();
    let stderr_log = std::fs::read_to_string(&stderr_path).unwrap_or_default();
    for (what, text) in [("--log file", &file_log), ("stderr (a file)", &stderr_log)] {
        assert!(text.contains("k1s server is ready"), "{what}:\n{text}");
        assert!(!text.contains('\u{1b}'), "{what} has escape codes:\n{text}");
        assert!(
            text.contains("unknown flag --no-such-flag found in config file"),
            "{what}:\n{text}"
        );
    }
}

/// `k1s check-config` on this machine reports every section, and on a fake Raspberry Pi
/// root with the memory cgroup off it fails with the cmdline.txt fix.
#[test]
fn check_config_here_and_on_a_pi_without_the_memory_cgroup() {
    let port = free_port().to_string();
    let out = Command::new(k1s_binary())
        .args(["check-config", "--ports", &port])
        .output()
        .unwrap_or_else(|e| panic!("k1s check-config: {e}"));
    let text = String::from_utf8_lossy(&out.stdout);
    for section in [
        "cgroups:",
        "kernel modules:",
        "programs:",
        "swap:",
        "ports:",
    ] {
        assert!(text.contains(section), "{section} missing:\n{text}");
    }
    assert!(
        text.contains(&format!("[  ok] port {port}/tcp is free")),
        "{text}"
    );
    // The status follows the report: failure exactly when a FAIL line is there.
    assert_eq!(out.status.success(), !text.contains("[FAIL]"), "{text}");

    let pi = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
    for (path, content) in [
        (
            "proc/cgroups",
            "#subsys_name\thierarchy\tnum_cgroups\tenabled\ncpuset\t0\t1\t1\ncpu\t0\t1\t1\n\
             memory\t0\t1\t0\npids\t0\t1\t1\n",
        ),
        ("sys/fs/cgroup/cgroup.controllers", "cpuset cpu io pids\n"),
        ("proc/swaps", "Filename\tType\tSize\tUsed\tPriority\n"),
        (
            "boot/firmware/cmdline.txt",
            "console=serial0,115200 console=tty1 root=PARTUUID=4e639091-02 rootwait\n",
        ),
    ] {
        let p = pi.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap_or(pi.path())).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(p, content).unwrap_or_else(|e| panic!("{e}"));
    }
    let out = Command::new(k1s_binary())
        .args(["check-config", "--ports", &port, "--host-root"])
        .arg(pi.path())
        .output()
        .unwrap_or_else(|e| panic!("k1s check-config: {e}"));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("[FAIL] memory cgroup disabled (/proc/cgroups: memory enabled 0)"),
        "{text}"
    );
    assert!(
        text.contains(
            "fix: add `cgroup_memory=1 cgroup_enable=memory` to the end of the single line in \
             /boot/firmware/cmdline.txt"
        ),
        "{text}"
    );
    assert!(text.contains("k1s cannot run on this host yet"), "{text}");
}

/// packaging/install.sh into temp folders: binary, unit (Type=notify, valid for
/// systemd-analyze where it exists), env file (0600), killall and uninstall scripts; not
/// enabled or started. A server run as the unit runs it is then stopped and removed with
/// every file by k1s-uninstall.sh.
#[test]
fn install_then_uninstall_leaves_nothing() {
    let t = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
    let d = |p: &str| t.path().join(p);
    let tag = unique();
    let install = Command::new("sh")
        .arg(repo_root().join("packaging/install.sh"))
        .args(["--disable", "servicelb"])
        .env("INSTALL_K1S_BIN", k1s_binary())
        .env("INSTALL_K1S_BIN_DIR", d("bin"))
        .env("INSTALL_K1S_SYSTEMD_DIR", d("systemd"))
        .env("INSTALL_K1S_CONFIG_DIR", d("etc"))
        .env("INSTALL_K1S_DATA_DIR", d("data"))
        .env("INSTALL_K1S_POD_LOG_DIR", d("pods"))
        // Never enable a unit that points into a temp folder, on a machine where systemd runs.
        .env("INSTALL_K1S_SKIP_ENABLE", "true")
        .env("K1S_TOKEN", "pi-secret")
        .output()
        .unwrap_or_else(|e| panic!("install.sh: {e}"));
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&install.stdout),
        String::from_utf8_lossy(&install.stderr)
    );
    assert!(install.status.success(), "{said}");
    let systemd_state = Command::new("systemctl")
        .arg("is-system-running")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    if !matches!(systemd_state.as_str(), "running" | "degraded") {
        assert!(
            said.contains("systemd is not running here") && said.contains("not enabled or started"),
            "{said}"
        );
    }
    let unit_path = d("systemd/k1s.service");
    let unit = std::fs::read_to_string(&unit_path).unwrap_or_else(|e| panic!("unit: {e}"));
    assert!(unit.contains("Type=notify"), "{unit}");
    assert!(
        unit.contains(&format!(
            "ExecStart={}/k1s \\\n    server",
            d("bin").display()
        )),
        "{unit}"
    );
    for flag in [
        "'--data-dir'",
        "'--config'",
        "'--disable' \\\n    'servicelb'",
    ] {
        assert!(unit.contains(flag), "{flag}: {unit}");
    }
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        let verify = Command::new("systemd-analyze")
            .arg("verify")
            .arg(&unit_path)
            .output()
            .unwrap_or_else(|e| panic!("systemd-analyze: {e}"));
        assert!(
            verify.status.success() && verify.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&verify.stderr)
        );
    }
    let env_file = d("systemd/k1s.service.env");
    let env = std::fs::read_to_string(&env_file).unwrap_or_else(|e| panic!("env: {e}"));
    assert!(env.lines().any(|l| l == "K1S_TOKEN=pi-secret"), "{env}");
    let mode = std::fs::metadata(&env_file)
        .unwrap_or_else(|e| panic!("{e}"))
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    for f in [
        "bin/k1s",
        "bin/k1s-killall.sh",
        "bin/k1s-uninstall.sh",
        "etc/config.yaml",
    ] {
        assert!(d(f).exists(), "{f} was not installed");
    }

    // The server, with the unit's flags and the installed config file.
    let port = free_port();
    let mut server = Command::new(d("bin/k1s"))
        .args(["server", "--disable-agent", "--bind-address", "127.0.0.1"])
        .args(["--https-listen-port", &port.to_string()])
        .arg("--data-dir")
        .arg(d("data"))
        .arg("--config")
        .arg(d("etc/config.yaml"))
        .arg("--write-kubeconfig")
        .arg(d("etc/k1s.yaml"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("installed k1s: {e}"));
    k1s_e2e::eventually(Duration::from_secs(60), "the installed server", || {
        d("etc/k1s.yaml").exists().then_some(())
    });
    let uninstall = Command::new(d("bin/k1s-uninstall.sh"))
        // Names of this test's own, so the clean-up touches nothing else on the host.
        .env("K1S_BRIDGE_NAME", format!("k1su{tag}"))
        .env("K1S_DNS_INTERFACE", format!("k1sd{tag}"))
        .output()
        .unwrap_or_else(|e| panic!("uninstall: {e}"));
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&uninstall.stdout),
        String::from_utf8_lossy(&uninstall.stderr)
    );
    assert!(uninstall.status.success(), "{said}");
    assert!(said.contains("killed k1s server"), "{said}");
    let status = k1s_e2e::eventually(Duration::from_secs(10), "the server to end", || {
        server.try_wait().ok().flatten()
    });
    assert!(!status.success());
    let left: Vec<PathBuf> = walk(t.path()).into_iter().filter(|p| !p.is_dir()).collect();
    assert!(left.is_empty(), "left behind: {left:?}\n{said}");
}

/// An agent install needs K1S_TOKEN with K1S_URL; with both it writes a `k1s agent` unit
/// (the installer refuses a binary without `k1s agent`, as older ones were).
#[test]
fn agent_install_needs_a_token_and_an_agent_command() {
    let t = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
    let run = |token: Option<&str>| {
        let mut cmd = Command::new("sh");
        cmd.arg(repo_root().join("packaging/install.sh"))
            .env("INSTALL_K1S_BIN", k1s_binary())
            .env("INSTALL_K1S_BIN_DIR", t.path().join("bin"))
            .env("INSTALL_K1S_SYSTEMD_DIR", t.path().join("systemd"))
            .env("INSTALL_K1S_CONFIG_DIR", t.path().join("etc"))
            .env("INSTALL_K1S_DATA_DIR", t.path().join("data"))
            .env("INSTALL_K1S_SKIP_ENABLE", "true")
            .env("K1S_URL", "https://192.0.2.1:6443");
        if let Some(token) = token {
            cmd.env("K1S_TOKEN", token);
        }
        let out = cmd.output().unwrap_or_else(|e| panic!("install.sh: {e}"));
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, err) = run(None);
    assert!(!ok && err.contains("it needs K1S_TOKEN too"), "{err}");
    let (ok, err) = run(Some("K10abc::server:secret"));
    assert!(ok, "{err}");
    let unit = std::fs::read_to_string(t.path().join("systemd/k1s-agent.service"))
        .unwrap_or_else(|e| panic!("k1s-agent.service: {e}"));
    assert!(unit.contains("Type=notify"), "{unit}");
    // ExecStart=<bin>/k1s \ then the command on the next line.
    assert!(
        unit.contains("ExecStart=")
            && unit
                .lines()
                .any(|l| l.trim() == "agent" || l.trim().starts_with("agent ")),
        "{unit}"
    );
}

/// `scripts/build-deb` packages a binary with dpkg-deb: the binary, unit and killall
/// script and the config file, with maintainer scripts.
#[test]
fn build_deb_packages_the_units_and_scripts() {
    let out_dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
    let build = Command::new(repo_root().join("scripts/build-deb"))
        // Uncompressed: xz of a debug binary takes minutes on a shared 2-core machine.
        .args(["--arch", "amd64", "--compress", "none", "--bin"])
        .arg(k1s_binary())
        .arg("--out")
        .arg(out_dir.path())
        .output()
        .unwrap_or_else(|e| panic!("build-deb: {e}"));
    assert!(
        build.status.success(),
        "{}",
        String::from_utf8_lossy(&build.stderr)
    );
    let deb = std::fs::read_dir(out_dir.path())
        .unwrap_or_else(|e| panic!("{e}"))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .unwrap_or_else(|| panic!("no .deb built"));
    assert!(
        deb.file_name()
            .is_some_and(|n| n.to_string_lossy().ends_with("_amd64.deb"))
    );
    let contents = Command::new("dpkg-deb")
        .arg("--contents")
        .arg(&deb)
        .output()
        .unwrap_or_else(|e| panic!("dpkg-deb: {e}"));
    let contents = String::from_utf8_lossy(&contents.stdout);
    for f in [
        "./usr/bin/k1s\n",
        "./usr/bin/k1s-killall.sh\n",
        "./lib/systemd/system/k1s.service\n",
        "./etc/k1s/config.yaml\n",
    ] {
        assert!(contents.contains(f), "{f} missing:\n{contents}");
    }
    assert!(!contents.contains(".env"), "{contents}");
    assert!(!contents.contains("uninstall"), "{contents}");
    let info = Command::new("dpkg-deb")
        .arg("--info")
        .arg(&deb)
        .output()
        .unwrap_or_else(|e| panic!("dpkg-deb: {e}"));
    let info = String::from_utf8_lossy(&info.stdout);
    for want in [
        "Package: k1s",
        "Architecture: amd64",
        "postinst",
        "prerm",
        "postrm",
    ] {
        assert!(info.contains(want), "{want}:\n{info}");
    }
}

/// Every path under `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            out.push(p.clone());
            if p.is_dir() {
                out.extend(walk(&p));
            }
        }
    }
    out
}

/// The harness's server log (its stderr, a file) has no colour codes either.
#[test]
fn the_harness_log_file_has_no_escape_codes() {
    let k = K1s::start();
    assert!(k.log().contains("k1s server is ready"));
    assert!(!k.log().contains('\u{1b}'), "{}", k.log());
}

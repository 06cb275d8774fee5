//! Hosts on one machine for multi-node tests: a bridge ("LAN") with the host's address,
//! network namespaces plugged into it, and `k1s agent` processes in them.
//!
//! Needs root, iproute2 and nsenter.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::{K1s, k1s_binary, newest_kubectl, test_images};

/// A number below `modulo` that differs between runs and processes (names and subnets).
pub fn random(modulo: u32) -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    (nanos ^ std::process::id().wrapping_mul(2_654_435_761)) % modulo
}

fn sh(args: &[&str]) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {args:?}: {e} (iproute2 is needed)"));
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The "LAN": a bridge on the host with the server's address, and one network namespace
/// per agent plugged into it. Removed on drop, with what the agents left.
pub struct Lan {
    /// Names of this LAN's bridge, namespaces and veths are made with it.
    pub tag: String,
    bridge: String,
    subnet: u32,
    namespaces: Vec<String>,
}

impl Lan {
    /// Makes the bridge with host 1's address.
    pub fn create() -> Lan {
        let tag = format!("{:04x}", random(0xffff));
        let lan = Lan {
            bridge: format!("k1sl{tag}"),
            subnet: 1 + random(250),
            tag,
            namespaces: Vec::new(),
        };
        sh(&["ip", "link", "add", &lan.bridge, "type", "bridge"]);
        sh(&[
            "ip",
            "addr",
            "add",
            &format!("{}/24", lan.ip(1)),
            "dev",
            &lan.bridge,
        ]);
        sh(&["ip", "link", "set", &lan.bridge, "up"]);
        lan
    }

    /// The address of host number `host` (1 is the host's own, on the bridge).
    pub fn ip(&self, host: u32) -> String {
        format!("172.30.{}.{host}", self.subnet)
    }

    /// A namespace for host number `host` (2, 3, …) with its address and a default route.
    pub fn add_host(&mut self, host: u32) -> String {
        let ns = format!("k1sn{}-{host}", self.tag);
        let veth = format!("k1sv{}{host}", self.tag);
        sh(&["ip", "netns", "add", &ns]);
        self.namespaces.push(ns.clone());
        sh(&[
            "ip", "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &ns,
        ]);
        sh(&["ip", "link", "set", &veth, "master", &self.bridge, "up"]);
        let in_ns = |args: &[&str]| {
            let mut full = vec!["ip", "netns", "exec", &ns];
            full.extend_from_slice(args);
            sh(&full);
        };
        in_ns(&[
            "ip",
            "addr",
            "add",
            &format!("{}/24", self.ip(host)),
            "dev",
            "eth0",
        ]);
        in_ns(&["ip", "link", "set", "eth0", "up"]);
        in_ns(&["ip", "link", "set", "lo", "up"]);
        in_ns(&["ip", "route", "add", "default", "via", &self.ip(1)]);
        ns
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        for ns in &self.namespaces {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge])
            .status();
    }
}

/// A `k1s agent` in a namespace, killed and cleaned up (`k1s killall`) on drop.
pub struct Agent {
    /// The running agent (`None` once stopped).
    pub child: Option<Child>,
    ns: String,
    /// Its data dir.
    pub data: PathBuf,
    log: PathBuf,
    bridge: String,
    /// Its node name.
    pub name: String,
}

impl Agent {
    /// Starts `k1s agent` in namespace `ns` with its own data dir under the server's
    /// folder and the test images in its airgap folder.
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        k1s: &K1s,
        ns: &str,
        name: &str,
        ip: &str,
        server: &str,
        token: &str,
        bridge: &str,
        extra: &[String],
    ) -> Agent {
        let data = k1s.dir().join(format!("agent-{name}"));
        let images = data.join("agent").join("images");
        std::fs::create_dir_all(&images).expect("agent images dir");
        for image in ["busybox.tar", "nginx.tar"] {
            std::fs::copy(test_images().join(image), images.join(image)).expect("copy test image");
        }
        let log = k1s.dir().join(format!("agent-{name}.log"));
        let file = std::fs::File::create(&log).expect("agent log");
        let err = file.try_clone().expect("agent log");
        let bin = k1s_binary();
        // nsenter enters the network namespace only: `ip netns exec` would also remount
        // /sys for it, hiding /sys/fs/cgroup from runc.
        let mut args: Vec<String> = vec![
            format!("--net=/run/netns/{ns}"),
            bin.to_string_lossy().into_owned(),
            "agent".into(),
            "--server".into(),
            server.into(),
            "--token".into(),
            token.into(),
            "--data-dir".into(),
            data.to_string_lossy().into_owned(),
            "--node-name".into(),
            name.into(),
            "--node-ip".into(),
            ip.into(),
            "--bridge-name".into(),
            bridge.into(),
            "--pod-log-dir".into(),
            k1s.dir()
                .join(format!("pod-logs-{name}"))
                .to_string_lossy()
                .into_owned(),
        ];
        args.extend(extra.iter().cloned());
        let child = Command::new("nsenter")
            .args(&args)
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(err)
            .spawn()
            .expect("cannot start k1s agent");
        Agent {
            child: Some(child),
            ns: ns.into(),
            data,
            log,
            bridge: bridge.into(),
            name: name.into(),
        }
    }

    /// The agent's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Stops the agent with SIGTERM, as a powered-off Pi stops answering.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // nsenter runs the agent in its own process (exec), so the pid is its.
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            for _ in 0..200 {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.stop();
        let _ = Command::new("nsenter")
            .arg(format!("--net=/run/netns/{}", self.ns))
            .arg(k1s_binary())
            .args(["killall", "--data-dir"])
            .arg(&self.data)
            .args(["--bridge-name", &self.bridge])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Whether the node is Ready; `None` while it is not registered.
pub fn node_ready(k1s: &K1s, name: &str) -> Option<bool> {
    let r = k1s.kubectl(&newest_kubectl(), &["get", "node", name, "-o", "json"]);
    if r.code != 0 {
        return None;
    }
    let node: Value = serde_json::from_str(&r.stdout).ok()?;
    node["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Ready")
        .map(|c| c["status"] == "True")
}

//! A throwaway etcd for tests: Debian's `etcd` (package `etcd-server`) on free loopback
//! ports with a temporary data dir, killed on drop. A missing binary fails the test.

// Test support: a failure to start etcd is meant to fail the test at once, saying why.
#![allow(clippy::panic)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running single-member etcd.
pub struct TestEtcd {
    child: Child,
    dir: tempfile::TempDir,
    /// Its client URL (`http://127.0.0.1:<port>`).
    pub endpoint: String,
}

/// The etcd binary: `$K1S_ETCD`, else `etcd` on the PATH, else `/usr/bin/etcd`.
pub fn etcd_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("K1S_ETCD") {
        return PathBuf::from(p);
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("etcd"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("/usr/bin/etcd"))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free port: {e}"))
}

impl TestEtcd {
    /// Starts etcd and waits until it reports itself healthy (it has a leader).
    pub fn start() -> Self {
        let binary = etcd_binary();
        if !binary.is_file() {
            panic!(
                "etcd is not installed ({}): apt-get install etcd-server, or set K1S_ETCD",
                binary.display()
            );
        }
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
        let client = format!("http://127.0.0.1:{}", free_port());
        let peer = format!("http://127.0.0.1:{}", free_port());
        let log = std::fs::File::create(dir.path().join("etcd.log"))
            .unwrap_or_else(|e| panic!("etcd log: {e}"));
        let child = Command::new(&binary)
            .args(["--name", "test", "--data-dir"])
            .arg(dir.path().join("data"))
            .args(["--listen-client-urls", &client])
            .args(["--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer])
            .args(["--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &format!("test={peer}")])
            // Tests want answers fast, not the defaults for real networks.
            .args(["--heartbeat-interval", "20", "--election-timeout", "200"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let mut etcd = TestEtcd {
            child,
            dir,
            endpoint: client,
        };
        etcd.wait_healthy();
        etcd
    }

    fn wait_healthy(&mut self) {
        let started = Instant::now();
        let addr = self.endpoint.trim_start_matches("http://").to_string();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("etcd exited with {status}: {}", self.log());
            }
            if health(&addr) {
                return;
            }
            if started.elapsed() > Duration::from_secs(60) {
                panic!("etcd not healthy after 60 s: {}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// What etcd logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("etcd.log")).unwrap_or_default()
    }
}

/// `GET /health` answers `"health":"true"` once the member has a leader.
fn health(addr: &str) -> bool {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(format!("GET /health HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .is_err()
    {
        return false;
    }
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.contains("\"health\":\"true\"")
}

impl Drop for TestEtcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

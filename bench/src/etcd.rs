//! The etcd reference: Debian's etcd on loopback with a temp data dir, driven over gRPC.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// A single-member etcd with default durability (every commit fsyncs its WAL).
pub struct Etcd {
    child: Child,
    /// The client URL.
    pub endpoint: String,
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl Etcd {
    /// The version `binary --version` reports.
    pub fn version(binary: &Path) -> anyhow::Result<String> {
        let out = Command::new(binary)
            .arg("--version")
            .output()
            .with_context(|| format!("cannot run {}", binary.display()))?;
        let text = String::from_utf8_lossy(&out.stdout);
        text.lines()
            .find_map(|l| l.strip_prefix("etcd Version: "))
            .map(str::to_string)
            .context("etcd --version printed no version")
    }

    /// Starts etcd on `data` and waits until it answers.
    pub async fn start(binary: &Path, data: &Path) -> anyhow::Result<Self> {
        let client_port = free_port()?;
        let peer_port = free_port()?;
        let client = format!("http://127.0.0.1:{client_port}");
        let peer = format!("http://127.0.0.1:{peer_port}");
        let log = std::fs::File::create(data.with_extension("log"))?;
        let child = Command::new(binary)
            .args(["--name", "bench", "--data-dir"])
            .arg(data)
            .args(["--listen-client-urls", &client])
            .args(["--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer])
            .args(["--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &format!("bench={peer}")])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let mut etcd = Etcd {
            child,
            endpoint: client,
        };
        let started = Instant::now();
        loop {
            if let Some(status) = etcd.child.try_wait()? {
                bail!("etcd exited with {status}");
            }
            if let Ok(mut c) = etcd.client().await
                && c.status().await.is_ok()
            {
                return Ok(etcd);
            }
            if started.elapsed() > Duration::from_secs(60) {
                bail!("etcd not ready after 60 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A gRPC client of this etcd.
    pub async fn client(&self) -> anyhow::Result<etcd_client::Client> {
        Ok(etcd_client::Client::connect([self.endpoint.as_str()], None).await?)
    }

    /// Process id, for footprint figures.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

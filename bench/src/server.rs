//! The k1s server under test: started as users start it, timed until `/readyz` says ok.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// How long a start may take before the benchmark gives up.
const START_TIMEOUT: Duration = Duration::from_secs(300);

/// A running `k1s server --disable-agent` (or with its agent) on a data dir of its own
/// (plus any flags given).
pub struct Server {
    binary: PathBuf,
    data: PathBuf,
    port: u16,
    extra_args: Vec<String>,
    agent: bool,
    child: Option<Child>,
}

impl Server {
    /// A server on `data` (not started yet).
    pub fn new(binary: &Path, data: PathBuf) -> anyhow::Result<Self> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .context("no free port")?;
        std::fs::create_dir_all(&data)
            .with_context(|| format!("cannot create {}", data.display()))?;
        Ok(Self {
            binary: binary.to_path_buf(),
            data,
            port,
            extra_args: Vec::new(),
            agent: false,
            child: None,
        })
    }

    /// The same server run with its agent (kubelet on the embedded containerd) instead of
    /// `--disable-agent`.
    pub fn with_agent(mut self) -> Self {
        self.agent = true;
        self
    }

    /// The server's data dir.
    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    /// The same server started with further `k1s server` flags.
    pub fn with_args(mut self, args: &[&str]) -> Self {
        self.extra_args.extend(args.iter().map(|a| a.to_string()));
        self
    }

    /// The server's HTTPS port (on 127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The kubeconfig the server writes.
    pub fn kubeconfig(&self) -> PathBuf {
        self.data.join("kubeconfig.yaml")
    }

    /// The SQLite database and its WAL.
    pub fn database_files(&self) -> [PathBuf; 2] {
        let db = self.data.join("server").join("db").join("state.db");
        let wal = PathBuf::from(format!("{}-wal", db.display()));
        [db, wal]
    }

    /// Process id of the running server.
    pub fn pid(&self) -> anyhow::Result<u32> {
        self.child
            .as_ref()
            .map(Child::id)
            .context("the server is not running")
    }

    /// Starts the server and returns the time from exec until `/readyz` answered ok.
    pub async fn start(&mut self) -> anyhow::Result<Duration> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.data.join("server.log"))
            .context("server log")?;
        let started = Instant::now();
        let mut command = Command::new(&self.binary);
        command.arg("server");
        if !self.agent {
            command.arg("--disable-agent");
        }
        let child = command
            .args(["--bind-address", "127.0.0.1"])
            .arg("--data-dir")
            .arg(&self.data)
            .arg("--write-kubeconfig")
            .arg(self.kubeconfig())
            .arg("--https-listen-port")
            .arg(self.port.to_string())
            .args(&self.extra_args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {}", self.binary.display()))?;
        self.child = Some(child);
        let mut client = None;
        loop {
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                bail!(
                    "k1s server exited with {status}; see {}",
                    self.data.join("server.log").display()
                );
            }
            if started.elapsed() > START_TIMEOUT {
                bail!("k1s server not ready after {START_TIMEOUT:?}");
            }
            if client.is_none() && self.kubeconfig().exists() {
                client = self.client().await.ok();
            }
            if let Some(c) = &client {
                let req = http::Request::get("/readyz").body(Vec::new())?;
                if c.request_text(req).await.is_ok_and(|t| t.trim() == "ok") {
                    return Ok(started.elapsed());
                }
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// A client with the admin identity from the kubeconfig.
    pub async fn client(&self) -> anyhow::Result<kube::Client> {
        client_from(&self.kubeconfig()).await
    }

    /// Stops the server with SIGTERM and waits for it to exit.
    pub fn stop(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status()
                .context("cannot run kill")?;
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if child.try_wait()?.is_some() {
                    return Ok(());
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            child.kill()?;
            child.wait()?;
            bail!("k1s server did not stop within 30 s of SIGTERM");
        }
        Ok(())
    }

    /// Bytes of the database plus its WAL.
    pub fn database_bytes(&self) -> (u64, u64) {
        let [db, wal] = self.database_files();
        let size = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
        (size(&db), size(&wal))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A client with the admin identity from the kubeconfig at `path`.
pub async fn client_from(path: &Path) -> anyhow::Result<kube::Client> {
    let kubeconfig = kube::config::Kubeconfig::read_from(path)?;
    let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?;
    config.read_timeout = Some(Duration::from_secs(300));
    Ok(kube::Client::try_from(config)?)
}

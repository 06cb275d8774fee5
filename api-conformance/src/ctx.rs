//! What a test gets: a namespace of its own, a kube-rs client, and the real kubectl.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::Api;
use serde_json::Value;

/// Why a test failed.
#[derive(Debug)]
pub struct Fail(pub String);

impl<E: std::error::Error> From<E> for Fail {
    fn from(e: E) -> Self {
        Fail(e.to_string())
    }
}

/// What a test returns.
pub type R = Result<(), Fail>;

/// Fails the test with a formatted message unless `cond` holds.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($arg:tt)*) => {
        if !$cond {
            return Err($crate::ctx::Fail(format!($($arg)*)));
        }
    };
}

/// Fails the test with a formatted message.
#[macro_export]
macro_rules! fail {
    ($($arg:tt)*) => {
        return Err($crate::ctx::Fail(format!($($arg)*)))
    };
}

/// What a kubectl run printed and how it ended.
#[derive(Debug)]
pub struct Out {
    /// Exit status (-1 when killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// Shared by every test of a run.
pub struct Cluster {
    /// The admin client.
    pub client: kube::Client,
    /// The kubectl binary.
    pub kubectl: PathBuf,
    /// The kubeconfig of the cluster.
    pub kubeconfig: PathBuf,
    /// Scratch folder of the run (kubectl caches, manifests).
    pub scratch: PathBuf,
    /// Suffix that makes this run's cluster-scoped names unique.
    pub run_tag: String,
}

/// The context of one test.
#[derive(Clone)]
pub struct Ctx {
    /// The cluster.
    pub cluster: Arc<Cluster>,
    /// The test's own namespace (created before it runs, deleted after).
    pub ns: String,
    /// Suffix that makes the test's cluster-scoped names unique.
    pub tag: String,
}

impl Ctx {
    /// The admin client.
    pub fn client(&self) -> kube::Client {
        self.cluster.client.clone()
    }

    /// An API of a namespaced kind in the test's namespace.
    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as kube::Resource>::DynamicType: Default,
    {
        Api::namespaced(self.client(), &self.ns)
    }

    /// An API of a cluster-scoped kind (or of a namespaced kind across namespaces).
    pub fn all<K>(&self) -> Api<K>
    where
        K: kube::Resource,
        <K as kube::Resource>::DynamicType: Default,
    {
        Api::all(self.client())
    }

    /// A name unique to this test (for cluster-scoped objects).
    pub fn name(&self, base: &str) -> String {
        format!("{base}-{}", self.tag)
    }

    /// Runs kubectl with `args` (and `stdin`), in the test's namespace unless the args name one.
    pub async fn kubectl_with(&self, args: &[&str], stdin: Option<&str>) -> Out {
        let mut cmd = tokio::process::Command::new(&self.cluster.kubectl);
        cmd.arg("--kubeconfig")
            .arg(&self.cluster.kubeconfig)
            .arg("--cache-dir")
            .arg(self.cluster.scratch.join(format!("cache-{}", self.tag)));
        if !args
            .iter()
            .any(|a| *a == "-n" || a.starts_with("--namespace") || *a == "-A")
        {
            cmd.args(["-n", &self.ns]);
        }
        cmd.args(args)
            .stdin(if stdin.is_some() {
                std::process::Stdio::piped()
            } else {
                std::process::Stdio::null()
            })
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                return Out {
                    code: -1,
                    stdout: String::new(),
                    stderr: format!("cannot run {}: {e}", self.cluster.kubectl.display()),
                };
            }
        };
        if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
            use tokio::io::AsyncWriteExt as _;
            let _ = pipe.write_all(input.as_bytes()).await;
        }
        match child.wait_with_output().await {
            Ok(o) => Out {
                code: o.status.code().unwrap_or(-1),
                stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
            },
            Err(e) => Out {
                code: -1,
                stdout: String::new(),
                stderr: e.to_string(),
            },
        }
    }

    /// Runs kubectl, which must succeed; its standard output.
    pub async fn k(&self, args: &[&str]) -> Result<String, Fail> {
        self.k_stdin(args, None).await
    }

    /// Runs kubectl with `stdin`, which must succeed; its standard output.
    pub async fn k_stdin(&self, args: &[&str], stdin: Option<&str>) -> Result<String, Fail> {
        let o = self.kubectl_with(args, stdin).await;
        if o.code != 0 {
            fail!(
                "kubectl {} exited {}: {}",
                args.join(" "),
                o.code,
                o.stderr.trim()
            );
        }
        Ok(o.stdout)
    }

    /// Runs kubectl, which must succeed, and reads its output as JSON.
    pub async fn k_json(&self, args: &[&str]) -> Result<Value, Fail> {
        let out = self.k(args).await?;
        serde_json::from_str(&out)
            .map_err(|e| Fail(format!("kubectl {}: not JSON ({e}): {out}", args.join(" "))))
    }

    /// Runs kubectl, which must fail; its standard error.
    pub async fn k_fails(&self, args: &[&str], stdin: Option<&str>) -> Result<String, Fail> {
        let o = self.kubectl_with(args, stdin).await;
        if o.code == 0 {
            fail!(
                "kubectl {} succeeded where it must fail: {}",
                args.join(" "),
                o.stdout.trim()
            );
        }
        Ok(o.stderr)
    }

    /// One raw request: status code and body as JSON (Null when not JSON).
    pub async fn raw(&self, method: &str, uri: &str, body: Option<&Value>) -> (u16, Value) {
        let (code, v, _) = k1s_e2e::request(&self.cluster.client, method, uri, body).await;
        (code, v)
    }

    /// One raw request with a content type: status code and body as JSON.
    pub async fn raw_typed(
        &self,
        method: &str,
        uri: &str,
        content_type: &str,
        body: &str,
    ) -> (u16, Value) {
        let (code, v, _) = k1s_e2e::request_bytes(
            &self.cluster.client,
            method,
            uri,
            content_type,
            body.as_bytes().to_vec(),
        )
        .await;
        (code, v)
    }
}

/// Polls `f` every 200 ms until it gives `Some`, failing after `secs` seconds.
pub async fn eventually<T, F, Fut>(secs: u64, what: &str, mut f: F) -> Result<T, Fail>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return Ok(v);
        }
        if Instant::now() > deadline {
            fail!("timed out after {secs} s waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Builds a typed object from JSON (a test's literal manifest).
pub fn obj<K: serde::de::DeserializeOwned>(v: Value) -> Result<K, Fail> {
    serde_json::from_value(v).map_err(|e| Fail(format!("manifest: {e}")))
}

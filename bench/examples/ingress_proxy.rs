//! The ingress proxy alone, without an API server, for profiling it (perf, callgrind, CPU
//! time per request) in front of any HTTP backend:
//!
//! `ingress_proxy LISTEN BACKEND [WORKERS]` serves every host and path on `LISTEN`
//! (e.g. 127.0.0.1:8080) from `BACKEND` (ip:port) with `WORKERS` worker threads (default
//! one per CPU; 0 runs the connections on the main runtime) until killed.

use std::net::SocketAddr;
use std::sync::Arc;

use k1s_ingress::proxy::{self, Router};
use k1s_ingress::routes::{Backend, PathKind, PathRule, Table};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: ingress_proxy LISTEN BACKEND [WORKERS]";
    let listen: SocketAddr = args.next().ok_or_else(|| anyhow::anyhow!(usage))?.parse()?;
    let backend: SocketAddr = args.next().ok_or_else(|| anyhow::anyhow!(usage))?.parse()?;
    let workers = match args.next() {
        Some(n) => n.parse()?,
        None => proxy::worker_threads(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let router = Arc::new(Router::default());
        let mut table = Table::default();
        table.host("").push(PathRule::new(
            "/",
            PathKind::Prefix,
            Arc::new(Backend::new("backend", vec![backend])),
        ));
        router.set(table);
        let listener = tokio::net::TcpListener::bind(listen).await?;
        proxy::serve_with(listener, None, router, workers, std::future::pending()).await;
        Ok(())
    })
}

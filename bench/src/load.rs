//! A closed-loop load driver: N clients each run one request after another for a while.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::report::Latencies;

/// What one phase measured.
#[derive(Debug)]
pub struct PhaseResult {
    /// Successful operations.
    pub ok: u64,
    /// Failed operations.
    pub failed: u64,
    /// The first failure, to tell the user.
    pub first_error: Option<String>,
    /// Wall time of the phase.
    pub elapsed: Duration,
    /// Latency of every successful operation.
    pub latencies: Latencies,
}

impl PhaseResult {
    /// Successful operations per second.
    pub fn rate(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Runs `op(worker, n)` on `clients` workers until `budget` is used up: either a duration
/// or a total number of operations shared by all workers.
pub async fn run<F, Fut>(clients: usize, budget: Budget, op: F) -> PhaseResult
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send,
{
    let op = Arc::new(op);
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(clients);
    for worker in 0..clients {
        let op = op.clone();
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Latencies::default();
            let (mut ok, mut failed, mut first_error) = (0u64, 0u64, None);
            loop {
                // Time is checked before a number is taken, so every number taken runs:
                // callers rely on 0..ok+failed all having been attempted.
                if let Budget::Time(d) = budget
                    && started.elapsed() >= d
                {
                    break;
                }
                let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if let Budget::Ops(total) = budget
                    && n >= total
                {
                    break;
                }
                let t = Instant::now();
                match op(worker, n).await {
                    Ok(()) => {
                        ok += 1;
                        lat.push(t.elapsed());
                    }
                    Err(e) => {
                        failed += 1;
                        first_error.get_or_insert_with(|| format!("{e:#}"));
                    }
                }
            }
            (ok, failed, first_error, lat)
        }));
    }
    let mut result = PhaseResult {
        ok: 0,
        failed: 0,
        first_error: None,
        elapsed: Duration::ZERO,
        latencies: Latencies::default(),
    };
    for t in tasks {
        if let Ok((ok, failed, err, lat)) = t.await {
            result.ok += ok;
            result.failed += failed;
            if result.first_error.is_none() {
                result.first_error = err;
            }
            result.latencies.extend(lat);
        }
    }
    result.elapsed = started.elapsed();
    if let Some(e) = &result.first_error {
        eprintln!("  ({} operations failed; first: {e})", result.failed);
    }
    result
}

/// How long a phase runs.
#[derive(Debug, Clone, Copy)]
pub enum Budget {
    /// For this long.
    Time(Duration),
    /// This many operations in total.
    Ops(u64),
}

//! CPU per write of the store on etcd, beside raw etcd puts, without the API server: how
//! much of a k1s write on etcd the store layer and etcd itself cost.
//!
//! ```sh
//! etcd --data-dir /tmp/e --listen-client-urls http://127.0.0.1:23790 \
//!     --advertise-client-urls http://127.0.0.1:23790 &
//! cargo run --release -p k1s-store --example etcd_write_cpu -- \
//!     http://127.0.0.1:23790 $(pgrep -n etcd) store 64 10 50
//! ```
//!
//! Arguments: endpoint, etcd's pid, a mode, clients, seconds per phase, watchers. Modes:
//! `raw` (etcd puts), `watched` (puts while one etcd watch takes every event, as the
//! store's watch does), `txn` (creates as the store guards them, no watch), `store`
//! (creates, then updates, through [`Store`] on [`EtcdBackend`] with `watchers` idle
//! watches on other resources, as a server's informers and garbage collector hold). Prints writes/s and CPU µs per write of this process and of etcd (from
//! `/proc/<pid>/stat`, load-independent).

use std::error::Error;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use k1s_store::{EtcdBackend, EtcdOptions, Store};

/// A value of about a ConfigMap's size as the API server stores it.
fn value(n: u64) -> Bytes {
    Bytes::from(format!("{{\"n\":{n},\"data\":\"{}\"}}", "x".repeat(600)))
}

/// CPU seconds (user + system) of a process so far.
fn cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which ends at the last ')': utime and stime are
    // the 14th and 15th fields of the line, the 12th and 13th after it.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

/// Runs `clients` loops of `op` for `seconds`; prints the rate and CPU per op.
async fn phase<F, Fut>(name: &str, etcd_pid: &str, clients: usize, seconds: u64, op: F)
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let op = Arc::new(op);
    let done = Arc::new(AtomicU64::new(0));
    let (own0, etcd0) = (cpu_seconds("self"), cpu_seconds(etcd_pid));
    let start = Instant::now();
    let deadline = start + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (op, done) = (op.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            let mut n = 0;
            while Instant::now() < deadline {
                if op(c, n).await {
                    done.fetch_add(1, Ordering::Relaxed);
                }
                n += 1;
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let n = done.load(Ordering::Relaxed).max(1) as f64;
    let own = (cpu_seconds("self") - own0) / n * 1e6;
    let etcd = (cpu_seconds(etcd_pid) - etcd0) / n * 1e6;
    println!(
        "{name}: {:.0} writes/s, this process {own:.0} µs CPU per write, etcd {etcd:.0} µs",
        n / elapsed
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [endpoint, etcd_pid, mode, clients, seconds, watchers] = args.as_slice() else {
        return Err(
            "usage: etcd_write_cpu ENDPOINT ETCD_PID raw|store CLIENTS SECONDS WATCHERS".into(),
        );
    };
    let (clients, seconds, watchers): (usize, u64, usize) =
        (clients.parse()?, seconds.parse()?, watchers.parse()?);
    let etcd_pid = etcd_pid.clone();
    if mode == "raw" || mode == "watched" {
        let client = etcd_client::Client::connect([endpoint.as_str()], None).await?;
        if mode == "watched" {
            let options = etcd_client::WatchOptions::new().with_prefix();
            let mut events = client.watch_client().watch("/raw/", Some(options)).await?;
            tokio::spawn(async move { while let Ok(Some(_)) = events.message().await {} });
        }
        phase(mode, &etcd_pid, clients, seconds, move |c, n| {
            let mut kv = client.kv_client();
            async move {
                kv.put(format!("/raw/{c}/{n}"), value(n).to_vec(), None)
                    .await
                    .is_ok()
            }
        })
        .await;
        return Ok(());
    }
    if mode == "txn" {
        use etcd_client::{Compare, CompareOp, Txn, TxnOp};
        let client = etcd_client::Client::connect([endpoint.as_str()], None).await?;
        phase(
            "guarded creates",
            &etcd_pid,
            clients,
            seconds,
            move |c, n| {
                let mut kv = client.kv_client();
                async move {
                    let key = format!("/raw/{c}/{n}");
                    let txn = Txn::new()
                        .when([Compare::create_revision(key.clone(), CompareOp::Equal, 0)])
                        .and_then([TxnOp::put(key.clone(), value(n).to_vec(), None)])
                        .or_else([TxnOp::get(key, None)]);
                    kv.txn(txn).await.is_ok_and(|r| r.succeeded())
                }
            },
        )
        .await;
        return Ok(());
    }
    let mut options = EtcdOptions::new(endpoint);
    options.compaction_interval = Duration::ZERO;
    let store = Store::open(Arc::new(EtcdBackend::new(options)?)).await?;
    for i in 0..watchers {
        let mut watch = store.watch(&format!("/registry/resource{i}/"), store.revision())?;
        tokio::spawn(async move { while watch.next().await.is_ok() {} });
    }
    let s = store.clone();
    phase("store creates", &etcd_pid, clients, seconds, move |c, n| {
        let s = s.clone();
        async move {
            s.create(&format!("/registry/configmaps/bench/c{c}/{n}"), value(n))
                .await
                .is_ok()
        }
    })
    .await;
    // Each client updates the keys it created, in turn (as many as it made).
    let made = Arc::new(
        (0..clients)
            .map(|c| {
                let (items, _, _) =
                    store
                        .cache()
                        .list(&format!("/registry/configmaps/bench/c{c}/"), None, 0);
                parking_lot::Mutex::new(
                    items
                        .iter()
                        .map(|kv| (kv.key.clone(), kv.mod_revision))
                        .collect::<Vec<_>>(),
                )
            })
            .collect::<Vec<_>>(),
    );
    let s = store.clone();
    phase("store updates", &etcd_pid, clients, seconds, move |c, n| {
        let (s, made) = (s.clone(), made.clone());
        async move {
            let (key, expected) = {
                let keys = made[c].lock();
                let Some(k) = keys.get(n as usize % keys.len().max(1)) else {
                    return false;
                };
                k.clone()
            };
            match s.update(&key, value(n), expected).await {
                Ok(kv) => {
                    let mut keys = made[c].lock();
                    let i = n as usize % keys.len();
                    keys[i].1 = kv.mod_revision;
                    true
                }
                Err(_) => false,
            }
        }
    })
    .await;
    Ok(())
}

use std::sync::Arc;

use bytes::Bytes;

use super::*;
use crate::{Store, StoreError};

fn opts(dir: &tempfile::TempDir) -> SqliteOptions {
    SqliteOptions::new(dir.path().join("state.db"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopen_keeps_every_acknowledged_write_and_revision_continues() {
    // A restart must not lose objects nor reuse revisions (clients compare them).
    let dir = tempfile::tempdir().unwrap();
    let last = {
        let store = Store::open(Arc::new(SqliteBackend::open(opts(&dir)).unwrap()))
            .await
            .unwrap();
        for i in 0..50 {
            store
                .create(&format!("/r/{i}"), Bytes::from(format!("v{i}")))
                .await
                .unwrap();
        }
        store
            .update("/r/7", Bytes::from_static(b"seven"), 0)
            .await
            .unwrap();
        store
            .delete("/r/8", Bytes::from_static(b"v8"), 0)
            .await
            .unwrap()
            .mod_revision
    };
    let store = Store::open(Arc::new(SqliteBackend::open(opts(&dir)).unwrap()))
        .await
        .unwrap();
    assert_eq!(store.revision(), last);
    assert_eq!(
        store.get("/r/7").unwrap().value,
        Bytes::from_static(b"seven")
    );
    assert!(store.get("/r/8").is_none());
    assert_eq!(store.list("/r/", 0, None, 0).await.unwrap().items.len(), 49);
    let next = store
        .create("/r/new", Bytes::from_static(b"n"))
        .await
        .unwrap();
    assert_eq!(next.mod_revision, last + 1);
    let report = store.backend().check().await.unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
}

#[test]
fn garbage_file_is_reported_corrupt_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    std::fs::write(
        &path,
        b"this is not a database at all, just some text that is long enough",
    )
    .unwrap();
    match SqliteBackend::open(SqliteOptions::new(&path)) {
        Err(StoreError::Corrupt { message }) => assert!(message.contains("state.db"), "{message}"),
        Err(e) => panic!("expected corrupt, got {e}"),
        Ok(_) => panic!("garbage opened as a database"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_database_is_reported_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    {
        let store = Store::open(Arc::new(SqliteBackend::open(opts(&dir)).unwrap()))
            .await
            .unwrap();
        for i in 0..500 {
            store
                .create(&format!("/r/{i}"), Bytes::from(vec![b'x'; 1000]))
                .await
                .unwrap();
        }
    }
    let len = std::fs::metadata(&path).unwrap().len();
    assert!(len > 100_000, "database unexpectedly small: {len}");
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.set_len(len / 3).unwrap();
    drop(f);
    match SqliteBackend::open(SqliteOptions::new(&path)) {
        Err(StoreError::Corrupt { .. }) => {}
        Err(e) => panic!("expected corrupt, got {e}"),
        Ok(_) => panic!("truncated database opened"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn churn_is_compacted_automatically_and_file_stays_bounded() {
    // Users of SQLite-backed k8s have seen databases grow without bound under lease churn.
    let dir = tempfile::tempdir().unwrap();
    let backend = Arc::new(SqliteBackend::open(opts(&dir)).unwrap());
    let store = Store::open(backend.clone()).await.unwrap();
    let value = Bytes::from(vec![b'l'; 400]);
    for i in 0..200 {
        store
            .create(&format!("/leases/{i}"), value.clone())
            .await
            .unwrap();
    }
    for round in 0..40 {
        let mut tasks = Vec::new();
        for i in 0..200 {
            let s = store.clone();
            let v = value.clone();
            tasks.push(tokio::spawn(async move {
                s.update(&format!("/leases/{i}"), v, 0).await.unwrap();
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        if round % 10 == 9 {
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        }
    }
    // Give the background compaction a moment to catch up.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let info = backend.info();
    assert!(info.compacted > 0, "nothing was compacted: {info:?}");
    let report = backend.check().await.unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    // 8200 writes happened; far fewer rows remain.
    assert!(report.rows < 4000, "history kept: {} rows", report.rows);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wal_stays_bounded_under_writes_that_never_pause() {
    // Checkpoints run off the write path; the WAL must still start over from its beginning
    // while writes keep coming (a background checkpoint alone never lets it).
    let dir = tempfile::tempdir().unwrap();
    let backend = Arc::new(SqliteBackend::open(opts(&dir)).unwrap());
    let store = Store::open(backend.clone()).await.unwrap();
    let value = Bytes::from(vec![b'n'; 1200]);
    for i in 0..100 {
        store
            .create(&format!("/nodes/{i}"), value.clone())
            .await
            .unwrap();
    }
    let wal = std::path::PathBuf::from(format!("{}-wal", backend.path().display()));
    let mut tasks = Vec::new();
    for w in 0..8 {
        let (s, v) = (store.clone(), value.clone());
        tasks.push(tokio::spawn(async move {
            for n in 0..2500 {
                s.update(&format!("/nodes/{}", (w * 2500 + n) % 100), v.clone(), 0)
                    .await
                    .unwrap();
            }
        }));
    }
    let mut largest = 0;
    while !tasks.iter().all(|t| t.is_finished()) {
        largest = largest.max(std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0));
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    for t in tasks {
        t.await.unwrap();
    }
    largest = largest.max(std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0));
    // 20000 writes of 1.2 KiB append well over 100 MiB of WAL frames if it never restarts.
    assert!(largest < 32 << 20, "the WAL grew to {largest} bytes");
    let report = backend.check().await.unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
}

/// Writes `n` keys whose values carry a marker, closes the store, and returns the file.
async fn filled(dir: &tempfile::TempDir, n: usize) -> std::path::PathBuf {
    let backend = Arc::new(SqliteBackend::open(opts(dir)).unwrap());
    let store = Store::open(backend.clone()).await.unwrap();
    for i in 0..n {
        store
            .create(
                &format!("/r/{i}"),
                Bytes::from(format!("{{\"marker\":\"value-{i:05}\"}}")),
            )
            .await
            .unwrap();
    }
    drop(store);
    backend.close();
    dir.path().join("state.db")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flipped_bit_in_a_value_is_reported_at_open() {
    // SQLite checks page structure, not value bytes: only the row checksum notices this.
    let dir = tempfile::tempdir().unwrap();
    let path = filled(&dir, 50).await;
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes
        .windows(11)
        .position(|w| w == b"value-00042")
        .expect("marker is in the file");
    bytes[at + 6] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();
    match SqliteBackend::open(SqliteOptions::new(&path)) {
        Err(StoreError::Corrupt { message }) => {
            assert!(
                message.contains("/r/42") && message.contains("checksum"),
                "{message}"
            )
        }
        Err(e) => panic!("expected corrupt, got {e}"),
        Ok(_) => panic!("a damaged value was accepted"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_reports_a_row_changed_behind_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = filled(&dir, 10).await;
    let backend = SqliteBackend::open(SqliteOptions::new(&path)).unwrap();
    let report = backend.check().await.unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute("UPDATE kv SET value = x'7b7d' WHERE name = '/r/3'", [])
        .unwrap();
    drop(conn);
    let report = backend.check().await.unwrap();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.contains("/r/3") && p.contains("checksum")),
        "{:?}",
        report.problems
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_1_file_is_upgraded_with_checksums() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             CREATE TABLE kv (id INTEGER PRIMARY KEY, name TEXT NOT NULL,
                 create_revision INTEGER NOT NULL, prev_revision INTEGER NOT NULL,
                 deleted INTEGER NOT NULL, value BLOB NOT NULL);
             CREATE INDEX kv_name_id ON kv (name, id DESC);
             CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
             INSERT INTO meta VALUES ('schema_version', 1), ('revision', 3);
             INSERT INTO kv VALUES (1, '/a', 1, 0, 0, x'6131');
             INSERT INTO kv VALUES (2, '/b', 2, 0, 0, x'6231');
             INSERT INTO kv VALUES (3, '/a', 1, 1, 0, x'6132');",
        )
        .unwrap();
    }
    let backend = Arc::new(SqliteBackend::open(SqliteOptions::new(&path)).unwrap());
    let store = Store::open(backend.clone()).await.unwrap();
    assert_eq!(
        store.backend().get("/a", 0).await.unwrap().unwrap().value,
        Bytes::from_static(b"a2")
    );
    let report = backend.check().await.unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    drop(store);
    backend.close();
    // Reopening verifies every checksum written by the upgrade.
    let again = SqliteBackend::open(SqliteOptions::new(&path)).unwrap();
    assert_eq!(again.info().live_keys, 2);
}

/// The bench's storage churn at the store's level: 100 leases and 100 node statuses
/// rewritten by 8 concurrent writers. Prints the per-write latency distribution, the worst
/// write and the files' sizes; run by hand (`K1S_CHURN_WRITES`, default 60000), in
/// release for figures: `cargo test --release -p k1s-store churn_write_latency -- --ignored
/// --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a check; run by hand"]
async fn churn_write_latency() {
    let writes: usize = std::env::var("K1S_CHURN_WRITES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60_000);
    let dir = tempfile::tempdir().unwrap();
    let backend = Arc::new(SqliteBackend::open(opts(&dir)).unwrap());
    let store = Store::open(backend.clone()).await.unwrap();
    // Sizes of a served Lease (~400 B) and a Node with one condition (~1.2 KiB).
    let lease = |n: usize| Bytes::from(format!("{n:0>400}"));
    let node = |n: usize| Bytes::from(format!("{n:0>1200}"));
    for i in 0..100 {
        store
            .create(&format!("/leases/{i}"), lease(0))
            .await
            .unwrap();
        store.create(&format!("/nodes/{i}"), node(0)).await.unwrap();
    }
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = std::time::Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (store, next) = (store.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= writes {
                    return latencies;
                }
                let (key, value) = if n % 2 == 0 {
                    (format!("/leases/{}", (n / 2) % 100), lease(n))
                } else {
                    (format!("/nodes/{}", (n / 2) % 100), node(n))
                };
                let t = std::time::Instant::now();
                store.update(&key, value, 0).await.unwrap();
                latencies.push(t.elapsed());
            }
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let elapsed = started.elapsed();
    all.sort();
    let q = |f: f64| all[((all.len() - 1) as f64 * f) as usize].as_secs_f64() * 1000.0;
    let slow = all.iter().filter(|d| d.as_millis() >= 50).count();
    let size = |suffix: &str| {
        std::fs::metadata(format!("{}{suffix}", backend.path().display()))
            .map(|m| m.len())
            .unwrap_or(0)
    };
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    // Pages in use may be fewer than the file holds: SQLite cuts the file back only at a
    // checkpoint that copies the whole WAL.
    let reader = schema::open_reader(backend.path()).unwrap();
    let pragma = |name: &str| -> i64 {
        reader
            .query_row(&format!("PRAGMA {name}"), [], |r| r.get(0))
            .unwrap()
    };
    let (pages, free) = (pragma("page_count"), pragma("freelist_count"));
    println!(
        "churn: {writes} writes in {:.1} s ({:.0}/s); p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, \
         worst {:.1} ms; {slow} writes ≥ 50 ms; database {} KiB ({pages} pages, {free} free), \
         WAL {} KiB; load {}",
        elapsed.as_secs_f64(),
        writes as f64 / elapsed.as_secs_f64(),
        q(0.5),
        q(0.99),
        q(0.999),
        q(1.0),
        size("") / 1024,
        size("-wal") / 1024,
        load.trim()
    );
    let report = backend.check().await.unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
}

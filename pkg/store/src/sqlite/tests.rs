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

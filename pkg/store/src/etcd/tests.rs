// Tests: a failed expectation is meant to panic with the value shown.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;

use super::testing::TestEtcd;
use super::{EtcdBackend, EtcdOptions};
use crate::conformance::{Fixture, run_all};
use crate::{Backend, EventKind, Store, StoreError};

fn backend(etcd: &TestEtcd, prefix: &str) -> EtcdBackend {
    let mut options = EtcdOptions::new(&etcd.endpoint);
    options.prefix = prefix.to_string();
    options.compaction_interval = Duration::ZERO;
    EtcdBackend::new(options).unwrap()
}

/// The same suite SQLite passes, against a real etcd: each case on a prefix of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_backend_conforms() {
    let etcd = Arc::new(TestEtcd::start());
    let n = AtomicUsize::new(0);
    run_all(|| {
        let prefix = format!("/case{}", n.fetch_add(1, Ordering::SeqCst));
        Fixture {
            backend: Arc::new(backend(&etcd, &prefix)),
            guard: Some(Box::new(etcd.clone())),
        }
    })
    .await;
}

/// Two servers on one etcd: each sees the other's writes in its cache and its watches,
/// and a consistent list on one reflects a write just acknowledged by the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stores_share_one_etcd() {
    let etcd = TestEtcd::start();
    let a = Store::open(Arc::new(backend(&etcd, ""))).await.unwrap();
    let b = Store::open(Arc::new(backend(&etcd, ""))).await.unwrap();
    let mut watch = b.watch("/registry/pods/", b.revision()).unwrap();
    let created = a
        .create("/registry/pods/default/web", Bytes::from_static(b"v1"))
        .await
        .unwrap();
    let listed = b.list("/registry/pods/", 0, None, 0).await.unwrap();
    assert_eq!(listed.items.len(), 1);
    assert!(listed.revision >= created.mod_revision);
    let e = tokio::time::timeout(Duration::from_secs(10), watch.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(e.kind, EventKind::Created);
    assert_eq!(e.kv.mod_revision, created.mod_revision);
    // A stale precondition from the other server is a conflict, not a lost update.
    b.update(
        "/registry/pods/default/web",
        Bytes::from_static(b"v2"),
        created.mod_revision,
    )
    .await
    .unwrap();
    let err = a
        .update(
            "/registry/pods/default/web",
            Bytes::from_static(b"v3"),
            created.mod_revision,
        )
        .await;
    assert!(matches!(err, Err(StoreError::Conflict { .. })), "{err:?}");
    assert_eq!(
        a.get("/registry/pods/default/web").unwrap().value,
        Bytes::from_static(b"v2")
    );
}

/// A write outside the store's keys moves etcd's revision without an event; a consistent
/// list still returns (a progress notification brings the cache up to it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consistent_list_catches_up_through_progress_notifications() {
    let etcd = TestEtcd::start();
    let mine = Arc::new(backend(&etcd, "/mine"));
    let store = Store::open(mine.clone()).await.unwrap();
    let other = backend(&etcd, "/other");
    let other = Store::open(Arc::new(other)).await.unwrap();
    let w = other
        .create("/registry/x", Bytes::from_static(b"x"))
        .await
        .unwrap();
    let listed = tokio::time::timeout(Duration::from_secs(5), store.list("/registry/", 0, None, 0))
        .await
        .unwrap()
        .unwrap();
    assert!(listed.items.is_empty());
    assert!(listed.revision >= w.mod_revision, "{listed:?}");
    assert!(store.revision() >= w.mod_revision);
}

/// Keys land where kube-apiserver puts them, and periodic compaction coordinates through
/// `compact_rev_key`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_use_the_kube_apiserver_layout_and_compaction_runs() {
    let etcd = TestEtcd::start();
    let mut options = EtcdOptions::new(&etcd.endpoint);
    options.compaction_interval = Duration::from_millis(300);
    let be = Arc::new(EtcdBackend::new(options).unwrap());
    let store = Store::open(be.clone()).await.unwrap();
    let first = store
        .create("/registry/configmaps/default/a", Bytes::from_static(b"1"))
        .await
        .unwrap();
    for i in 0..5 {
        store
            .update(
                "/registry/configmaps/default/a",
                Bytes::from(format!("{i}")),
                0,
            )
            .await
            .unwrap();
    }
    let mut raw = etcd_client::Client::connect([etcd.endpoint.as_str()], None)
        .await
        .unwrap();
    let got = raw
        .get("/registry/configmaps/default/a", None)
        .await
        .unwrap();
    assert_eq!(got.kvs().len(), 1);
    // Two intervals: the first records a revision, the second compacts to it.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let r = be
            .get("/registry/configmaps/default/a", first.mod_revision)
            .await;
        if matches!(r, Err(StoreError::Compacted { .. })) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never compacted: {r:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(be.info().compacted > first.mod_revision);
    let marker = raw.get("compact_rev_key", None).await.unwrap();
    assert!(marker.kvs()[0].version() >= 2);
}

/// A store opened while etcd is unreachable says so instead of hanging.
#[tokio::test]
async fn unreachable_etcd_is_unavailable() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let be = EtcdBackend::new(EtcdOptions::new(&format!("http://127.0.0.1:{port}"))).unwrap();
    let err = tokio::time::timeout(Duration::from_secs(30), be.check())
        .await
        .unwrap();
    assert!(
        matches!(err, Err(StoreError::Unavailable { .. })),
        "{err:?}"
    );
}

#[test]
fn options_refuse_mixed_schemes_and_tls_files_on_http() {
    let err = EtcdBackend::new(EtcdOptions::new("http://a:2379,https://b:2379")).err();
    assert!(matches!(err, Some(StoreError::Unavailable { .. })));
    let mut o = EtcdOptions::new("http://a:2379");
    o.ca_file = Some("/nonexistent".into());
    assert!(EtcdBackend::new(o).is_err());
    let mut o = EtcdOptions::new("https://a:2379");
    o.ca_file = Some("/nonexistent/ca.crt".into());
    let err = EtcdBackend::new(o).err().unwrap().to_string();
    assert!(err.contains("--datastore-cafile"), "{err}");
}

/// An update learns its key's create revision from the watch, or, on a backend whose
/// watch is not running, by reading the key at the update's revision.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_report_the_create_revision_with_and_without_the_watch() {
    let etcd = TestEtcd::start();
    let unstarted = backend(&etcd, "/cold");
    let a = unstarted
        .write(crate::WriteOp::Create {
            key: "/r/a".into(),
            value: Bytes::from_static(b"1"),
        })
        .await
        .unwrap();
    let a2 = unstarted
        .write(crate::WriteOp::Update {
            key: "/r/a".into(),
            value: Bytes::from_static(b"2"),
            expected: a.mod_revision,
        })
        .await
        .unwrap();
    assert_eq!(a2.create_revision, a.mod_revision);
    assert!(a2.mod_revision > a.mod_revision);
    let store = Store::open(Arc::new(backend(&etcd, "/warm")))
        .await
        .unwrap();
    let b = store
        .create("/r/b", Bytes::from_static(b"1"))
        .await
        .unwrap();
    for i in 0..3u8 {
        let b2 = store.update("/r/b", Bytes::from(vec![i]), 0).await.unwrap();
        assert_eq!(b2.create_revision, b.mod_revision);
    }
}

/// Under a watch cache the etcd watch carries no previous values (etcd would read each
/// update's old value again to send it): a deletion made through another server still
/// reaches watchers with its last value and create revision, from the cache, and the
/// live bytes are the cache's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletions_through_another_server_carry_the_last_value_without_prev_values() {
    let etcd = TestEtcd::start();
    let a = Store::open(Arc::new(backend(&etcd, ""))).await.unwrap();
    let b = Store::open(Arc::new(backend(&etcd, ""))).await.unwrap();
    let key = "/registry/configmaps/default/c";
    let created = a.create(key, Bytes::from_static(b"v1")).await.unwrap();
    a.update(key, Bytes::from_static(b"v22"), created.mod_revision)
        .await
        .unwrap();
    let mut watch = b.watch("/registry/configmaps/", b.revision()).unwrap();
    let deleted = a.delete(key, Bytes::new(), 0).await.unwrap();
    let event = loop {
        let e = tokio::time::timeout(Duration::from_secs(10), watch.next())
            .await
            .unwrap()
            .unwrap();
        if e.kind == EventKind::Deleted {
            break e;
        }
    };
    assert_eq!(event.kv.value, Bytes::from_static(b"v22"));
    assert_eq!(event.kv.create_revision, created.mod_revision);
    assert_eq!(event.kv.mod_revision, deleted.mod_revision);
    assert_eq!(
        event.prev.as_ref().map(|p| p.value.clone()),
        Some(Bytes::from_static(b"v22"))
    );
    assert_eq!(b.backend().info().live_bytes, 0);
    b.create(key, Bytes::from_static(b"v333")).await.unwrap();
    assert_eq!(b.backend().info().live_bytes, 4);
}

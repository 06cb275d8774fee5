//! The store contract as a test suite: every backend must pass [`run_all`] unmodified.

// A test suite: a failed expectation is meant to panic with the value shown.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::any::Any;
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;

use crate::backend::{Backend, EventSink, ListPage};
use crate::{Event, EventKind, Revision, Store, StoreError};

/// A backend under test plus whatever must live as long as it (a temp dir).
pub struct Fixture {
    /// The backend.
    pub backend: Arc<dyn Backend>,
    /// Dropped after the backend.
    pub guard: Option<Box<dyn Any + Send>>,
}

/// Records events for assertions.
#[derive(Default)]
struct Recorder(Mutex<Vec<Event>>);

impl EventSink for Recorder {
    fn apply(&self, events: Vec<Event>) {
        self.0.lock().extend(events);
    }

    fn reset(&self, _page: ListPage) {
        // Cases start from an empty backend: the initial state holds nothing to record.
    }

    fn progress(&self, _revision: Revision) {}
}

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

/// Runs every conformance case, each on a fresh backend from `make`.
pub async fn run_all(make: impl Fn() -> Fixture) {
    revisions_increase_and_values_round_trip(make()).await;
    create_of_existing_key_is_already_exists(make()).await;
    stale_update_is_conflict_with_current_value(make()).await;
    update_or_delete_of_missing_key_is_not_found(make()).await;
    list_reads_history_at_a_revision(make()).await;
    list_pages_by_start_after_and_limit(make()).await;
    reads_below_compaction_are_compacted_and_future_reads_refused(make()).await;
    recreated_key_gets_new_create_revision(make()).await;
    events_reach_the_sink_in_revision_order(make()).await;
    store_watch_sees_later_events_and_410_below_window(make()).await;
    concurrent_writers_get_unique_revisions(make()).await;
    check_reports_no_problems(make()).await;
}

async fn revisions_increase_and_values_round_trip(f: Fixture) {
    let be = f.backend;
    be.start(Arc::new(Recorder::default())).await.unwrap();
    let a = be
        .write(crate::WriteOp::Create {
            key: "/r/a".into(),
            value: b("1"),
        })
        .await
        .unwrap();
    let a2 = be
        .write(crate::WriteOp::Update {
            key: "/r/a".into(),
            value: b("2"),
            expected: a.mod_revision,
        })
        .await
        .unwrap();
    assert!(a2.mod_revision > a.mod_revision);
    assert_eq!(a2.create_revision, a.mod_revision);
    let got = be.get("/r/a", 0).await.unwrap().unwrap();
    assert_eq!(got.value, b("2"));
    assert_eq!(got.mod_revision, a2.mod_revision);
    let old = be.get("/r/a", a.mod_revision).await.unwrap().unwrap();
    assert_eq!(old.value, b("1"));
    let d = be
        .write(crate::WriteOp::Delete {
            key: "/r/a".into(),
            value: b("2"),
            expected: 0,
        })
        .await
        .unwrap();
    assert!(d.mod_revision > a2.mod_revision);
    assert!(be.get("/r/a", 0).await.unwrap().is_none());
    assert_eq!(be.info().revision, d.mod_revision);
}

async fn create_of_existing_key_is_already_exists(f: Fixture) {
    let be = f.backend;
    be.start(Arc::new(Recorder::default())).await.unwrap();
    be.write(crate::WriteOp::Create {
        key: "/r/a".into(),
        value: b("1"),
    })
    .await
    .unwrap();
    let err = be
        .write(crate::WriteOp::Create {
            key: "/r/a".into(),
            value: b("x"),
        })
        .await;
    assert!(
        matches!(err, Err(StoreError::AlreadyExists { .. })),
        "{err:?}"
    );
    assert_eq!(be.get("/r/a", 0).await.unwrap().unwrap().value, b("1"));
}

async fn stale_update_is_conflict_with_current_value(f: Fixture) {
    let be = f.backend;
    be.start(Arc::new(Recorder::default())).await.unwrap();
    let a = be
        .write(crate::WriteOp::Create {
            key: "/r/a".into(),
            value: b("1"),
        })
        .await
        .unwrap();
    let a2 = be
        .write(crate::WriteOp::Update {
            key: "/r/a".into(),
            value: b("2"),
            expected: 0,
        })
        .await
        .unwrap();
    let err = be
        .write(crate::WriteOp::Update {
            key: "/r/a".into(),
            value: b("3"),
            expected: a.mod_revision,
        })
        .await;
    match err {
        Err(StoreError::Conflict {
            current, expected, ..
        }) => {
            assert_eq!(expected, a.mod_revision);
            assert_eq!(current.mod_revision, a2.mod_revision);
            assert_eq!(current.value, b("2"));
        }
        other => panic!("expected conflict, got {other:?}"),
    }
    let err = be
        .write(crate::WriteOp::Delete {
            key: "/r/a".into(),
            value: b("2"),
            expected: a.mod_revision,
        })
        .await;
    assert!(matches!(err, Err(StoreError::Conflict { .. })), "{err:?}");
    assert_eq!(be.get("/r/a", 0).await.unwrap().unwrap().value, b("2"));
}

async fn update_or_delete_of_missing_key_is_not_found(f: Fixture) {
    let be = f.backend;
    be.start(Arc::new(Recorder::default())).await.unwrap();
    let err = be
        .write(crate::WriteOp::Update {
            key: "/r/x".into(),
            value: b("1"),
            expected: 0,
        })
        .await;
    assert!(matches!(err, Err(StoreError::NotFound { .. })), "{err:?}");
    let err = be
        .write(crate::WriteOp::Delete {
            key: "/r/x".into(),
            value: b("1"),
            expected: 0,
        })
        .await;
    assert!(matches!(err, Err(StoreError::NotFound { .. })), "{err:?}");
}

async fn list_reads_history_at_a_revision(f: Fixture) {
    let be = f.backend;
    be.start(Arc::new(Recorder::default())).await.unwrap();
    be.write(crate::WriteOp::Create {
        key: "/r/a".into(),
        value: b("a1"),
    })
    .await
    .unwrap();
    let r1 = be
        .write(crate::WriteOp::Create {
            key: "/r/b".into(),
            value: b("b1"),
        })
        .await
        .unwrap();
    be.write(crate::WriteOp::Create {
        key: "/other/z".into(),
        value: b("z"),
    })
    .await
    .unwrap();
    be.write(crate::WriteOp::Update {
        key: "/r/a".into(),
        value: b("a2"),
        expected: 0,
    })
    .await
    .unwrap();
    be.write(crate::WriteOp::Delete {
        key: "/r/b".into(),
        value: b("b1"),
        expected: 0,
    })
    .await
    .unwrap();
    be.write(crate::WriteOp::Create {
        key: "/r/c".into(),
        value: b("c1"),
    })
    .await
    .unwrap();

    let now = be.list("/r/", 0, None, 0).await.unwrap();
    let keys: Vec<_> = now
        .items
        .iter()
        .map(|kv| (kv.key.as_str(), kv.value.clone()))
        .collect();
    assert_eq!(keys, vec![("/r/a", b("a2")), ("/r/c", b("c1"))]);
    assert_eq!(now.revision, be.info().revision);

    let then = be.list("/r/", r1.mod_revision, None, 0).await.unwrap();
    let keys: Vec<_> = then
        .items
        .iter()
        .map(|kv| (kv.key.as_str(), kv.value.clone()))
        .collect();
    assert_eq!(keys, vec![("/r/a", b("a1")), ("/r/b", b("b1"))]);
    assert_eq!(then.revision, r1.mod_revision);
}

async fn list_pages_by_start_after_and_limit(f: Fixture) {
    let be = f.backend;
    be.start(Arc::new(Recorder::default())).await.unwrap();
    for i in 0..10 {
        be.write(crate::WriteOp::Create {
            key: format!("/r/k{i}"),
            value: b("v"),
        })
        .await
        .unwrap();
    }
    be.write(crate::WriteOp::Delete {
        key: "/r/k3".into(),
        value: b("v"),
        expected: 0,
    })
    .await
    .unwrap();
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    let rev = be.info().revision;
    loop {
        let page = be.list("/r/", rev, after.as_deref(), 4).await.unwrap();
        assert!(page.items.len() <= 4);
        seen.extend(page.items.iter().map(|kv| kv.key.clone()));
        after = page.items.last().map(|kv| kv.key.clone());
        if !page.more {
            break;
        }
    }
    let expected: Vec<_> = (0..10)
        .filter(|i| *i != 3)
        .map(|i| format!("/r/k{i}"))
        .collect();
    assert_eq!(seen, expected);
    // What follows a page is counted without the deleted key, at the page's revision
    // even after later writes.
    assert_eq!(be.count("/r/", rev, None).await.unwrap(), 9);
    assert_eq!(be.count("/r/", rev, Some("/r/k2")).await.unwrap(), 6);
    be.write(crate::WriteOp::Create {
        key: "/r/k99".into(),
        value: b("v"),
    })
    .await
    .unwrap();
    assert_eq!(be.count("/r/", rev, Some("/r/k2")).await.unwrap(), 6);
    assert_eq!(be.count("/r/", 0, Some("/r/k2")).await.unwrap(), 7);
}

async fn reads_below_compaction_are_compacted_and_future_reads_refused(f: Fixture) {
    let be = f.backend;
    be.start(Arc::new(Recorder::default())).await.unwrap();
    let a = be
        .write(crate::WriteOp::Create {
            key: "/r/a".into(),
            value: b("1"),
        })
        .await
        .unwrap();
    let mut last = a.clone();
    for i in 0..5 {
        last = be
            .write(crate::WriteOp::Update {
                key: "/r/a".into(),
                value: b(&format!("v{i}")),
                expected: 0,
            })
            .await
            .unwrap();
    }
    let gone = be
        .write(crate::WriteOp::Create {
            key: "/r/gone".into(),
            value: b("g"),
        })
        .await
        .unwrap();
    be.write(crate::WriteOp::Delete {
        key: "/r/gone".into(),
        value: b("g"),
        expected: 0,
    })
    .await
    .unwrap();
    let target = last.mod_revision;
    be.compact(target).await.unwrap();
    let err = be.get("/r/a", a.mod_revision).await;
    assert!(matches!(err, Err(StoreError::Compacted { .. })), "{err:?}");
    let err = be.list("/r/", a.mod_revision, None, 0).await;
    assert!(matches!(err, Err(StoreError::Compacted { .. })), "{err:?}");
    // At the compaction point the newest value is still readable.
    let at = be.get("/r/a", target).await.unwrap().unwrap();
    assert_eq!(at.value, b("v4"));
    let _ = gone;
    let err = be.get("/r/a", be.info().revision + 10).await;
    assert!(
        matches!(err, Err(StoreError::FutureRevision { .. })),
        "{err:?}"
    );
    // Writes continue after compaction with increasing revisions.
    let next = be
        .write(crate::WriteOp::Create {
            key: "/r/b".into(),
            value: b("b"),
        })
        .await
        .unwrap();
    assert!(next.mod_revision > target);
    let live = be.list("/r/", 0, None, 0).await.unwrap();
    assert_eq!(live.items.len(), 2);
}

async fn recreated_key_gets_new_create_revision(f: Fixture) {
    let be = f.backend;
    be.start(Arc::new(Recorder::default())).await.unwrap();
    let a = be
        .write(crate::WriteOp::Create {
            key: "/r/a".into(),
            value: b("1"),
        })
        .await
        .unwrap();
    be.write(crate::WriteOp::Delete {
        key: "/r/a".into(),
        value: b("1"),
        expected: 0,
    })
    .await
    .unwrap();
    let a2 = be
        .write(crate::WriteOp::Create {
            key: "/r/a".into(),
            value: b("2"),
        })
        .await
        .unwrap();
    assert!(a2.create_revision > a.create_revision);
    assert_eq!(a2.create_revision, a2.mod_revision);
}

async fn events_reach_the_sink_in_revision_order(f: Fixture) {
    let be = f.backend;
    let rec = Arc::new(Recorder::default());
    be.start(rec.clone()).await.unwrap();
    be.write(crate::WriteOp::Create {
        key: "/r/a".into(),
        value: b("1"),
    })
    .await
    .unwrap();
    be.write(crate::WriteOp::Update {
        key: "/r/a".into(),
        value: b("2"),
        expected: 0,
    })
    .await
    .unwrap();
    be.write(crate::WriteOp::Delete {
        key: "/r/a".into(),
        value: b("2"),
        expected: 0,
    })
    .await
    .unwrap();
    let events = rec.0.lock().clone();
    let kinds: Vec<_> = events.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        vec![EventKind::Created, EventKind::Updated, EventKind::Deleted]
    );
    assert!(events.windows(2).all(|w| w[0].revision() < w[1].revision()));
    assert_eq!(events[2].kv.value, b("2"));
}

async fn store_watch_sees_later_events_and_410_below_window(f: Fixture) {
    let store = Store::open_with_window(f.backend, 4).await.unwrap();
    let start = store.revision();
    let mut watch = store.watch("/r/", start).unwrap();
    store.create("/r/a", b("1")).await.unwrap();
    store.create("/other/x", b("x")).await.unwrap();
    let a = store.update("/r/a", b("2"), 0).await.unwrap();
    let e1 = watch.next().await.unwrap();
    assert_eq!((e1.kind, e1.kv.key.as_str()), (EventKind::Created, "/r/a"));
    let e2 = watch.next().await.unwrap();
    assert_eq!(e2.kind, EventKind::Updated);
    assert_eq!(e2.prev.as_ref().map(|p| p.value.clone()), Some(b("1")));
    assert_eq!(e2.kv.mod_revision, a.mod_revision);
    // Read-your-writes: the cache has the write when the write returns.
    assert_eq!(store.get("/r/a").unwrap().value, b("2"));
    // Push the start revision out of a 4-event window.
    for i in 0..6 {
        store.create(&format!("/r/n{i}"), b("n")).await.unwrap();
    }
    let err = store.watch("/r/", start);
    assert!(matches!(err, Err(StoreError::Compacted { .. })));
    // A watcher that fell behind the window is ended the same way.
    let err = watch.next().await;
    assert!(
        matches!(err, Err(StoreError::Compacted { .. })),
        "{:?}",
        err.map(|_| ())
    );
    // Watching from now on works and a new event wakes it.
    let now = store.revision();
    let mut watch = store.watch("/r/", now).unwrap();
    let s2 = store.clone();
    let writer = tokio::spawn(async move { s2.create("/r/late", b("l")).await.unwrap() });
    let e = watch.next().await.unwrap();
    assert_eq!(e.kv.key, "/r/late");
    writer.await.unwrap();
}

async fn concurrent_writers_get_unique_revisions(f: Fixture) {
    let store = Store::open(f.backend).await.unwrap();
    let mut tasks = Vec::new();
    for t in 0..8 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut revs: Vec<Revision> = Vec::new();
            for i in 0..50 {
                revs.push(
                    s.create(&format!("/r/{t}-{i}"), b("v"))
                        .await
                        .unwrap()
                        .mod_revision,
                );
            }
            revs
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let n = all.len();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), n);
    let listed = store.list("/r/", 0, None, 0).await.unwrap();
    assert_eq!(listed.items.len(), 400);
}

async fn check_reports_no_problems(f: Fixture) {
    let store = Store::open(f.backend).await.unwrap();
    for i in 0..20 {
        store.create(&format!("/r/{i}"), b("v")).await.unwrap();
        store.update(&format!("/r/{i}"), b("w"), 0).await.unwrap();
    }
    store.delete("/r/3", b("w"), 0).await.unwrap();
    store.compact(store.revision() - 5).await.unwrap();
    let report = store.backend().check().await.unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!(report.live_keys, 19);
}

use super::*;
use crate::KeyValue;

fn kv(key: &str, rev: Revision) -> Arc<KeyValue> {
    Arc::new(KeyValue {
        key: key.into(),
        value: bytes::Bytes::from_static(b"v"),
        create_revision: rev,
        mod_revision: rev,
    })
}

#[test]
fn list_respects_prefix_start_after_and_limit() {
    // Pagination continues strictly after the last key of the previous page.
    let cache = WatchCache::new(10);
    cache.apply(
        ["/a/1", "/a/2", "/a/3", "/b/1"]
            .iter()
            .enumerate()
            .map(|(i, k)| Event {
                kind: EventKind::Created,
                kv: kv(k, i as i64 + 1),
                prev: None,
            })
            .collect(),
    );
    let (items, rev, more) = cache.list("/a/", None, 2);
    assert_eq!(
        items.iter().map(|k| k.key.as_str()).collect::<Vec<_>>(),
        ["/a/1", "/a/2"]
    );
    assert!(more);
    assert_eq!(rev, 4);
    let (items, _, more) = cache.list("/a/", Some("/a/2"), 2);
    assert_eq!(
        items.iter().map(|k| k.key.as_str()).collect::<Vec<_>>(),
        ["/a/3"]
    );
    assert!(!more);
}

#[test]
fn deleted_event_carries_prev_and_removes_key() {
    let cache = WatchCache::new(10);
    cache.apply(vec![Event {
        kind: EventKind::Created,
        kv: kv("/a/1", 1),
        prev: None,
    }]);
    cache.apply(vec![Event {
        kind: EventKind::Deleted,
        kv: kv("/a/1", 2),
        prev: None,
    }]);
    assert!(cache.get("/a/1").is_none());
    let state = cache.state.read();
    assert_eq!(
        state.events[1].prev.as_ref().map(|p| p.mod_revision),
        Some(1)
    );
}

#[test]
fn event_window_is_bounded_by_bytes_and_old_watches_get_compacted() {
    // 100 updates of a 1 KiB value into a window of about 10 KiB: only the newest stay.
    let cache = Arc::new(WatchCache::with_limits(1000, 10 * 1024));
    for rev in 1..=100 {
        cache.apply(vec![Event {
            kind: if rev == 1 {
                EventKind::Created
            } else {
                EventKind::Updated
            },
            kv: Arc::new(KeyValue {
                key: "/a/1".into(),
                value: bytes::Bytes::from(vec![b'x'; 1024]),
                create_revision: 1,
                mod_revision: rev,
            }),
            prev: None,
        }]);
    }
    let state = cache.state.read();
    assert!(
        (5..=10).contains(&state.events.len()),
        "{} events kept",
        state.events.len()
    );
    assert!(state.event_bytes <= 10 * 1024);
    drop(state);
    assert!(matches!(
        cache.watch("/a/", 50),
        Err(StoreError::Compacted { .. })
    ));
    assert!(cache.watch("/a/", 99).is_ok());
}

fn created(key: &str, rev: Revision) -> Event {
    Event {
        kind: EventKind::Created,
        kv: kv(key, rev),
        prev: None,
    }
}

#[tokio::test]
async fn a_commit_wakes_the_watchers_of_its_topic_only_and_the_others_stay_current() {
    let cache = Arc::new(WatchCache::new(4));
    let mut pods = cache.watch("/registry/pods/ns/", 0).unwrap();
    let mut everything = cache.watch("/registry/", 0).unwrap();
    for rev in 1..=10 {
        cache.apply(vec![created(
            &format!("/registry/configmaps/ns/c{rev}"),
            rev,
        )]);
    }
    assert!(!pods.rx.has_changed().unwrap(), "woken by configmaps");
    assert!(everything.rx.has_changed().unwrap());
    // The window (4 events) moved past the pod watcher's position, but none of the events
    // it lost were pods: it is as current as the cache and is not ended.
    assert_eq!(pods.position(), 10);
    assert!(cache.watch("/registry/pods/", 2).is_ok());
    assert!(matches!(
        everything.next().await,
        Err(StoreError::Compacted { .. })
    ));
    assert!(matches!(
        cache.watch("/registry/", 2),
        Err(StoreError::Compacted { .. })
    ));

    cache.apply(vec![created("/registry/pods/ns/p", 11)]);
    assert!(pods.rx.has_changed().unwrap());
    let event = pods.next().await.unwrap();
    assert_eq!(event.kv.key, "/registry/pods/ns/p");
    assert_eq!(pods.position(), 11);
    // A pod event past the position that left the window does end a pod watcher.
    let mut late = cache.watch("/registry/pods/other/", 10).unwrap();
    for rev in 12..=20 {
        cache.apply(vec![created(
            &format!("/registry/configmaps/ns/d{rev}"),
            rev,
        )]);
    }
    assert!(matches!(
        late.next().await,
        Err(StoreError::Compacted { .. })
    ));
}

#[test]
fn a_deletion_without_its_last_value_gets_it_from_the_cache() {
    let cache = WatchCache::new(10);
    assert!(cache.fills_deleted_values());
    cache.apply(vec![created("/a/1", 1)]);
    assert_eq!(cache.live_bytes(), Some(1));
    cache.apply(vec![Event {
        kind: EventKind::Deleted,
        kv: Arc::new(KeyValue {
            key: "/a/1".into(),
            value: bytes::Bytes::new(),
            create_revision: 0,
            mod_revision: 2,
        }),
        prev: None,
    }]);
    assert_eq!(cache.live_bytes(), Some(0));
    let state = cache.state.read();
    let deleted = &state.events[1].kv;
    assert_eq!(
        (
            deleted.value.as_ref(),
            deleted.create_revision,
            deleted.mod_revision
        ),
        (&b"v"[..], 1, 2)
    );
}

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

//! The encoded form of recent watch events, shared by every watcher of a resource: each
//! watcher of pods would otherwise decode the stored bytes, convert them to the served
//! form and encode them again, once per watcher, for every write (with a dozen in-process
//! pod watches that was most of the server's CPU under load).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use bytes::Bytes;
use k1s_store::{KeyValue, Revision};
use parking_lot::Mutex;

/// Memory the entries may hold, counted as they are held (the encoded bytes, the key, and
/// each entry's map and queue slots): enough for the watchers of a burst of writes to find
/// each other's work while they lag a thousand or so events behind one another. A watcher
/// further behind encodes again, which for built-in kinds is a splice of the stored bytes
/// (`served_json`, a fifth of a decode and encode), so the memo no longer keeps 32 MiB
/// for the rare laggard. Counting only the encoded bytes, a "32 MiB" memo of small
/// metadata encodings held 70 MiB.
const CAPACITY_BYTES: usize = 8 << 20;

/// What an entry costs beyond its encoded bytes and key strings: the map's slot (key
/// pointer, `Bytes`, control byte), the queue's, the shared key's allocation header and
/// string headers, and allocator rounding.
const ENTRY_OVERHEAD: usize = 192;

/// Which encoding of which version of the object an entry holds.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct MemoKey {
    revision: Revision,
    key: String,
    /// `group/version/kind` served, and the output form.
    form: String,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<Arc<MemoKey>, Bytes>,
    /// Insertion order with each entry's cost; the key is shared with `entries`.
    order: VecDeque<(Arc<MemoKey>, usize)>,
    bytes: usize,
}

/// A bounded map from (event, served form) to the encoded object.
#[derive(Default)]
pub struct WatchMemo {
    inner: Mutex<Inner>,
}

impl WatchMemo {
    /// The encoded object for `kv` in `form`, computed with `encode` by the first watcher
    /// that asks; `None` when `encode` fails (not remembered).
    pub fn get_or_encode(
        &self,
        kv: &KeyValue,
        form: &str,
        encode: impl FnOnce() -> Option<Bytes>,
    ) -> Option<Bytes> {
        let key = MemoKey {
            revision: kv.mod_revision,
            key: kv.key.clone(),
            form: form.to_string(),
        };
        if let Some(b) = self.inner.lock().entries.get(&key) {
            return Some(b.clone());
        }
        // Encoded outside the lock: two watchers may both encode one event, which is
        // cheaper than serializing every watcher behind one encoder.
        let bytes = encode()?;
        let cost = bytes.len() + key.key.len() + key.form.len() + ENTRY_OVERHEAD;
        let key = Arc::new(key);
        let mut inner = self.inner.lock();
        if inner.entries.insert(key.clone(), bytes.clone()).is_none() {
            inner.order.push_back((key, cost));
            inner.bytes += cost;
        }
        while inner.bytes > CAPACITY_BYTES {
            let Some((old, cost)) = inner.order.pop_front() else {
                break;
            };
            inner.entries.remove(&old);
            inner.bytes -= cost;
        }
        Some(bytes)
    }
}

/// `encoded` as a long-lived holder (this memo, the store's stored objects) should keep
/// it: serde_json's output grows by doubling, and a `Bytes` made from the `Vec` keeps the
/// whole allocation (up to twice the encoding, for as long as the bytes live), so a loose
/// one is copied to its length.
pub fn fitted(encoded: Vec<u8>) -> Bytes {
    if encoded.capacity() - encoded.len() > encoded.len() / 8 {
        Bytes::copy_from_slice(&encoded)
    } else {
        Bytes::from(encoded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(rev: Revision) -> KeyValue {
        KeyValue {
            key: "/registry/pods/default/p".into(),
            value: Bytes::from_static(b"{}"),
            create_revision: 1,
            mod_revision: rev,
        }
    }

    #[test]
    fn an_event_is_encoded_once_per_form() {
        let memo = WatchMemo::default();
        let mut calls = 0;
        for _ in 0..3 {
            let b = memo.get_or_encode(&kv(5), "v1/Pod/json", || {
                calls += 1;
                Some(Bytes::from_static(b"x"))
            });
            assert_eq!(b.as_deref(), Some(&b"x"[..]));
        }
        assert_eq!(calls, 1);
        // Another revision or another form is another entry.
        memo.get_or_encode(&kv(6), "v1/Pod/json", || {
            calls += 1;
            Some(Bytes::new())
        });
        memo.get_or_encode(&kv(5), "v1/Pod/meta", || {
            calls += 1;
            Some(Bytes::new())
        });
        assert_eq!(calls, 3);
    }

    #[test]
    fn old_entries_go_past_the_capacity() {
        let memo = WatchMemo::default();
        let big = Bytes::from(vec![b'a'; 1 << 20]);
        for rev in 0..64 {
            memo.get_or_encode(&kv(rev), "f", || Some(big.clone()));
        }
        let inner = memo.inner.lock();
        assert!(inner.bytes <= CAPACITY_BYTES);
        assert!(!inner.entries.contains_key(&MemoKey {
            revision: 0,
            key: "/registry/pods/default/p".into(),
            form: "f".into(),
        }));
    }

    #[test]
    fn small_entries_are_counted_with_what_holds_them() {
        let memo = WatchMemo::default();
        for rev in 0..200_000 {
            memo.get_or_encode(&kv(rev), "f", || Some(Bytes::from_static(b"{}")));
        }
        let inner = memo.inner.lock();
        // Each costs its 2 bytes, its key strings and the overhead, not 2 + 64 bytes.
        let each = 2 + "/registry/pods/default/p".len() + 1 + ENTRY_OVERHEAD;
        assert_eq!(inner.entries.len(), CAPACITY_BYTES / each);
        assert_eq!(inner.order.len(), inner.entries.len());
    }

    #[test]
    fn loose_encodings_are_copied_to_their_length() {
        let mut loose = Vec::with_capacity(1024);
        loose.extend_from_slice(&[b'x'; 300]);
        let kept = fitted(loose);
        assert_eq!(kept.len(), 300);
        let mut tight = Vec::with_capacity(320);
        tight.extend_from_slice(&[b'y'; 300]);
        let ptr = tight.as_ptr();
        let kept = fitted(tight);
        assert_eq!(kept.as_ptr(), ptr, "a tight Vec is kept as it is");
    }
}

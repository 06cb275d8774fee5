//! k1s-store: the versioned key-value log under the API server.
//!
//! Keys are strings in upstream's etcd layout (`/registry/pods/default/web-0`), values are
//! opaque bytes. One global revision counter orders every write; an object's
//! `resourceVersion` is the revision of its last write. A [`Backend`] persists the log
//! (SQLite by default, etcd for several servers, memory for tests); the [`WatchCache`] holds the current state and a
//! window of recent events in memory and serves reads and watches, so the database sees
//! only writes. [`Store`] ties the two together and is what the API server uses.

mod backend;
pub mod cache;
#[cfg(any(test, feature = "test-util"))]
pub mod conformance;
pub mod encryption;
mod error;
pub mod etcd;
pub mod memory;
pub mod sqlite;
mod store;
mod waiters;

pub use backend::{Backend, BackendInfo, CheckReport, EventSink, ListPage};
pub use cache::{WatchCache, WatchStream};
pub use error::StoreError;
pub use etcd::{EtcdBackend, EtcdOptions};
pub use memory::MemoryBackend;
pub use sqlite::{SqliteBackend, SqliteOptions};
pub use store::{ListResult, Store};

use std::sync::Arc;

use bytes::Bytes;

/// A store revision: the position of a write in the global log. Revisions start at 1;
/// 0 means "none".
pub type Revision = i64;

/// One key's value as of some revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    /// The key (`/registry/<resource>/<namespace>/<name>`).
    pub key: String,
    /// The stored bytes. For a deletion event: the object's last value.
    pub value: Bytes,
    /// Revision at which the key was created (its current incarnation).
    pub create_revision: Revision,
    /// Revision of the last write to the key (the deletion, for a deletion event).
    pub mod_revision: Revision,
}

/// What a write did to a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// The key did not exist before this write.
    Created,
    /// The key existed and got a new value.
    Updated,
    /// The key was removed.
    Deleted,
}

/// One committed write, as watchers see it.
#[derive(Debug, Clone)]
pub struct Event {
    /// What happened.
    pub kind: EventKind,
    /// The new value (for [`EventKind::Deleted`]: the last value, at the deletion revision).
    pub kv: Arc<KeyValue>,
    /// The value before this write, if the key existed. Watchers with selectors need it to
    /// tell "stopped matching" from "never matched".
    pub prev: Option<Arc<KeyValue>>,
}

impl Event {
    /// The revision of this write.
    pub fn revision(&self) -> Revision {
        self.kv.mod_revision
    }
}

/// A write the backend is asked to make, with its precondition.
#[derive(Debug, Clone)]
pub enum WriteOp {
    /// Create the key; fails with [`StoreError::AlreadyExists`] if it exists.
    Create {
        /// Key to create.
        key: String,
        /// Its value.
        value: Bytes,
    },
    /// Replace the value; fails with [`StoreError::Conflict`] unless the key's current
    /// mod revision is `expected` (0 = any), and [`StoreError::NotFound`] if it is absent.
    Update {
        /// Key to update.
        key: String,
        /// New value.
        value: Bytes,
        /// Required current mod revision, 0 for none.
        expected: Revision,
    },
    /// Delete the key, recording `value` as its last state; same preconditions as update.
    Delete {
        /// Key to delete.
        key: String,
        /// The value the deletion event carries (the object as it was deleted).
        value: Bytes,
        /// Required current mod revision, 0 for none.
        expected: Revision,
    },
}

impl WriteOp {
    /// The key this op writes.
    pub fn key(&self) -> &str {
        match self {
            WriteOp::Create { key, .. }
            | WriteOp::Update { key, .. }
            | WriteOp::Delete { key, .. } => key,
        }
    }
}

/// The smallest key greater than every key starting with `prefix` (the end of a prefix
/// range), or `None` when no such key exists.
pub fn prefix_end(prefix: &str) -> Option<String> {
    let mut bytes = prefix.as_bytes().to_vec();
    while let Some(last) = bytes.pop() {
        if last < 0x7f {
            bytes.push(last + 1);
            return String::from_utf8(bytes).ok();
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::conformance::{Fixture, run_all};
    use crate::{MemoryBackend, SqliteBackend};

    #[tokio::test]
    async fn memory_backend_conforms() {
        run_all(|| Fixture {
            backend: Arc::new(MemoryBackend::new()),
            guard: None,
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_backend_conforms() {
        run_all(|| {
            let (backend, dir) = SqliteBackend::open_temp().unwrap();
            Fixture {
                backend: Arc::new(backend),
                guard: Some(Box::new(dir)),
            }
        })
        .await;
    }
}

//! Store errors: one variant per outcome the API server must tell apart.

use crate::{KeyValue, Revision};

/// Errors from any backend or the watch cache.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The key does not exist.
    #[error("key {key} not found")]
    NotFound {
        /// The missing key.
        key: String,
    },
    /// A create found the key already present.
    #[error("key {key} already exists")]
    AlreadyExists {
        /// The existing key.
        key: String,
    },
    /// A precondition on the mod revision failed.
    #[error("key {key} was modified: expected revision {expected}, found {}", current.mod_revision)]
    Conflict {
        /// The key.
        key: String,
        /// The revision the caller expected.
        expected: Revision,
        /// The key's current value.
        current: Box<KeyValue>,
    },
    /// The requested revision has been compacted away.
    #[error("revision {requested} has been compacted (oldest available is {oldest})")]
    Compacted {
        /// The revision asked for.
        requested: Revision,
        /// The oldest revision still available.
        oldest: Revision,
    },
    /// The requested revision is newer than the store's current one.
    #[error("revision {requested} is in the future (current is {current})")]
    FutureRevision {
        /// The revision asked for.
        requested: Revision,
        /// The current revision.
        current: Revision,
    },
    /// The datastore cannot take writes now (full disk, I/O error); nothing was written.
    #[error("datastore unavailable: {message}")]
    Unavailable {
        /// What went wrong, for the operator.
        message: String,
    },
    /// The datastore failed its consistency check or holds unreadable data.
    #[error("datastore is corrupt: {message}")]
    Corrupt {
        /// What is wrong.
        message: String,
    },
    /// The store is shutting down.
    #[error("datastore is closed")]
    Closed,
}

//! The contract every persistence engine fulfils.

use std::sync::Arc;

use async_trait::async_trait;

use crate::{Event, KeyValue, Revision, StoreError, WriteOp};

/// Receives committed writes in revision order, before the writes are acknowledged.
///
/// The watch cache is the sink: because it is fed before the acknowledgement, a client that
/// got an answer to its write reads that write back from the cache.
pub trait EventSink: Send + Sync {
    /// Called once per commit with the writes of that commit, in revision order. `prev`
    /// of each event is filled in by the sink from its own state.
    fn apply(&self, events: Vec<Event>);

    /// Replaces the sink's whole state with `page`: the backend calls it once at start,
    /// before any [`EventSink::apply`], and again when it had to resynchronise (an etcd
    /// watch that fell behind compaction). Watchers older than `page` must relist.
    fn reset(&self, page: ListPage);

    /// Tells the sink that every commit up to `revision` has been delivered, though none
    /// of them touched its keys (etcd progress notifications, writes outside the prefix).
    fn progress(&self, revision: Revision);

    /// Whether the sink holds every live value and so can give a deletion its last value
    /// itself: a [`crate::EventKind::Deleted`] event may then come with create revision 0
    /// and no value, which the sink replaces with those of the value it removes. The etcd
    /// backend then watches without previous values, sparing etcd a read of the old value
    /// for every update it sends.
    fn fills_deleted_values(&self) -> bool {
        false
    }

    /// Bytes of the live values, where the sink holds them all (see
    /// [`EventSink::fills_deleted_values`]).
    fn live_bytes(&self) -> Option<u64> {
        None
    }
}

/// One page of a list read at a revision.
#[derive(Debug, Clone, Default)]
pub struct ListPage {
    /// Live keys in key order.
    pub items: Vec<KeyValue>,
    /// The revision the page was read at.
    pub revision: Revision,
    /// Whether keys beyond `items` remain.
    pub more: bool,
}

/// Result of a backend's own consistency check.
#[derive(Debug, Clone, Default)]
pub struct CheckReport {
    /// Number of rows (revisions) examined.
    pub rows: u64,
    /// Number of live keys.
    pub live_keys: u64,
    /// Current revision.
    pub revision: Revision,
    /// Problems found; empty means consistent.
    pub problems: Vec<String>,
}

/// Sizes and positions a backend reports (for metrics and benchmarks).
#[derive(Debug, Clone, Default)]
pub struct BackendInfo {
    /// Human-readable name (`sqlite:/var/lib/k1s/server/db/state.db`).
    pub name: String,
    /// Current revision.
    pub revision: Revision,
    /// Oldest revision that reads and watches can still ask for.
    pub compacted: Revision,
    /// Bytes on disk (database plus WAL), 0 for memory.
    pub disk_bytes: u64,
    /// Bytes of live values.
    pub live_bytes: u64,
    /// Number of live keys.
    pub live_keys: u64,
}

/// A versioned key-value log.
///
/// Every write gets the next revision. Writes are durable before they are acknowledged.
/// Reads of old revisions succeed until the revision is compacted.
#[async_trait]
pub trait Backend: Send + Sync + 'static {
    /// Starts the backend: hands every live key at the current revision to
    /// [`EventSink::reset`] and returns the same page, and from then on feeds every later
    /// commit to `sink` (before acknowledging it).
    async fn start(&self, sink: Arc<dyn EventSink>) -> Result<ListPage, StoreError>;

    /// Applies one write with its precondition and returns the key's new state (for a
    /// delete: the last value at the deletion revision).
    async fn write(&self, op: WriteOp) -> Result<KeyValue, StoreError>;

    /// Reads live keys under `prefix` as of `revision` (0 = current), strictly after
    /// `start_after` when given, at most `limit` keys (0 = no limit).
    async fn list(
        &self,
        prefix: &str,
        revision: Revision,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<ListPage, StoreError>;

    /// Counts live keys under `prefix` as of `revision` (0 = current), strictly after
    /// `start_after` when given: what a paginated list reports as `remainingItemCount`.
    /// The default reads them all; a backend may count without reading values.
    async fn count(
        &self,
        prefix: &str,
        revision: Revision,
        start_after: Option<&str>,
    ) -> Result<u64, StoreError> {
        let page = self.list(prefix, revision, start_after, 0).await?;
        Ok(page.items.len() as u64)
    }

    /// Reads one key as of `revision` (0 = current).
    async fn get(&self, key: &str, revision: Revision) -> Result<Option<KeyValue>, StoreError>;

    /// Discards history at and below `revision`; reads below it then fail with
    /// [`StoreError::Compacted`].
    async fn compact(&self, revision: Revision) -> Result<(), StoreError>;

    /// Checks the backend's own invariants.
    async fn check(&self) -> Result<CheckReport, StoreError>;

    /// Sizes and positions.
    fn info(&self) -> BackendInfo;

    /// Waits until the sink has every commit acknowledged so far by anyone writing to this
    /// datastore, and returns that revision: what a consistent read must reflect. A backend
    /// that is the only writer feeds its sink before acknowledging, so its current
    /// revision already is; a shared one (etcd) asks the datastore. Fails with
    /// [`StoreError::Unavailable`] when the sink cannot catch up in time.
    async fn fresh_revision(&self) -> Result<Revision, StoreError> {
        Ok(self.info().revision)
    }

    /// Whether other processes may write to this datastore too (several servers on one
    /// etcd): state a single writer may keep in memory (allocators) must then be claimed
    /// in the store itself.
    fn shared(&self) -> bool {
        false
    }
}

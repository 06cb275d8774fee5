//! The store the API server uses: a backend for durability plus the watch cache for reads.

use std::sync::Arc;

use bytes::Bytes;

use crate::backend::Backend;
use crate::cache::{DEFAULT_WINDOW, WatchCache, WatchStream};
use crate::{KeyValue, Revision, StoreError, WriteOp};

/// Result of a list: live values in key order at one revision.
#[derive(Debug, Clone, Default)]
pub struct ListResult {
    /// Values in key order.
    pub items: Vec<Arc<KeyValue>>,
    /// The revision they reflect.
    pub revision: Revision,
    /// Whether more keys follow (when a limit was given).
    pub more: bool,
}

/// Backend plus watch cache.
#[derive(Clone)]
pub struct Store {
    backend: Arc<dyn Backend>,
    cache: Arc<WatchCache>,
}

impl Store {
    /// Starts the backend and loads the cache from it.
    pub async fn open(backend: Arc<dyn Backend>) -> Result<Self, StoreError> {
        Self::open_with_window(backend, DEFAULT_WINDOW).await
    }

    /// Like [`Store::open`] with a watch window of `window` events.
    pub async fn open_with_window(
        backend: Arc<dyn Backend>,
        window: usize,
    ) -> Result<Self, StoreError> {
        let cache = Arc::new(WatchCache::new(window));
        // The backend loads the cache itself (EventSink::reset) before it feeds later
        // commits, which a shared datastore may do before `start` returns.
        backend.start(cache.clone()).await?;
        Ok(Self { backend, cache })
    }

    /// The backend underneath.
    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    /// The watch cache.
    pub fn cache(&self) -> &Arc<WatchCache> {
        &self.cache
    }

    /// The current revision.
    pub fn revision(&self) -> Revision {
        self.cache.revision()
    }

    async fn write(&self, op: WriteOp) -> Result<KeyValue, StoreError> {
        let kv = self.backend.write(op).await?;
        self.cache.wait_for(kv.mod_revision).await;
        Ok(kv)
    }

    /// Creates a key; [`StoreError::AlreadyExists`] if present.
    pub async fn create(&self, key: &str, value: Bytes) -> Result<KeyValue, StoreError> {
        self.write(WriteOp::Create {
            key: key.to_string(),
            value,
        })
        .await
    }

    /// Replaces a key's value if its mod revision is `expected` (0 = any).
    pub async fn update(
        &self,
        key: &str,
        value: Bytes,
        expected: Revision,
    ) -> Result<KeyValue, StoreError> {
        self.write(WriteOp::Update {
            key: key.to_string(),
            value,
            expected,
        })
        .await
    }

    /// Deletes a key if its mod revision is `expected` (0 = any); `last` is the value the
    /// deletion event carries.
    pub async fn delete(
        &self,
        key: &str,
        last: Bytes,
        expected: Revision,
    ) -> Result<KeyValue, StoreError> {
        self.write(WriteOp::Delete {
            key: key.to_string(),
            value: last,
            expected,
        })
        .await
    }

    /// The current value of a key.
    pub fn get(&self, key: &str) -> Option<Arc<KeyValue>> {
        self.cache.get(key)
    }

    /// The value of a key as of `revision` (0 = current).
    pub async fn get_at(
        &self,
        key: &str,
        revision: Revision,
    ) -> Result<Option<Arc<KeyValue>>, StoreError> {
        if revision == 0 || revision == self.cache.revision() {
            return Ok(self.cache.get(key));
        }
        Ok(self.backend.get(key, revision).await?.map(Arc::new))
    }

    /// Live keys under `prefix` as of `revision` (0 = current), after `start_after`, at
    /// most `limit` (0 = all). The current revision is served from memory once the cache
    /// has every write acknowledged anywhere (a consistent read, as kube-apiserver's
    /// consistent list from its watch cache); older ones from the backend until
    /// compacted.
    pub async fn list(
        &self,
        prefix: &str,
        revision: Revision,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<ListResult, StoreError> {
        let mut cached = revision != 0 && revision == self.cache.revision();
        if revision == 0 {
            match self.backend.fresh_revision().await {
                Ok(fresh) => {
                    self.cache.wait_for(fresh).await;
                    cached = true;
                }
                // The cache lags: the backend answers at its current revision instead.
                Err(StoreError::Unavailable { message }) => {
                    tracing::debug!(%message, "consistent list served by the datastore");
                }
                Err(e) => return Err(e),
            }
        }
        if cached {
            let (items, at, more) = self.cache.list(prefix, start_after, limit);
            // The cache may have moved on between the check and the read; then the
            // backend answers for the exact revision asked.
            if revision == 0 || at == revision {
                return Ok(ListResult {
                    items,
                    revision: at,
                    more,
                });
            }
        }
        let page = self
            .backend
            .list(prefix, revision, start_after, limit)
            .await?;
        Ok(ListResult {
            items: page.items.into_iter().map(Arc::new).collect(),
            revision: page.revision,
            more: page.more,
        })
    }

    /// Live keys under `prefix` as of `revision` (0 = current) strictly after
    /// `start_after`: from memory when the cache is at that revision, else from the
    /// backend (until compacted).
    pub async fn count(
        &self,
        prefix: &str,
        revision: Revision,
        start_after: Option<&str>,
    ) -> Result<u64, StoreError> {
        let (n, at) = self.cache.count(prefix, start_after);
        if revision == 0 || at == revision {
            return Ok(n);
        }
        self.backend.count(prefix, revision, start_after).await
    }

    /// Events for keys under `prefix` after `from`.
    pub fn watch(&self, prefix: &str, from: Revision) -> Result<WatchStream, StoreError> {
        self.cache.watch(prefix, from)
    }

    /// Discards history at and below `revision`.
    pub async fn compact(&self, revision: Revision) -> Result<(), StoreError> {
        self.backend.compact(revision).await
    }
}

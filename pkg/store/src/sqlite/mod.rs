//! SQLite backend: the default datastore, embedded, durable on every acknowledged write.

mod checkpoint;
mod schema;
mod writer;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc;

use async_trait::async_trait;
use bytes::Bytes;
use parking_lot::Mutex;
use rusqlite::{Connection, params};
use tokio::sync::oneshot;

use self::writer::{Request, Shared, Writer};
use crate::backend::{Backend, BackendInfo, CheckReport, EventSink, ListPage};
use crate::{KeyValue, Revision, StoreError, WriteOp, prefix_end};

/// When history is compacted automatically.
#[derive(Debug, Clone)]
pub struct CompactionPolicy {
    /// Compact automatically at all.
    pub auto: bool,
    /// History may take this fraction of the live data's bytes before it is compacted.
    pub history_ratio: f64,
    /// History below this many bytes is never compacted automatically.
    pub min_history_bytes: u64,
    /// The newest revisions that are never compacted automatically (continue tokens and
    /// exact-revision reads within this window keep working).
    pub min_retained_revisions: Revision,
}

impl Default for CompactionPolicy {
    fn default() -> Self {
        Self {
            auto: true,
            history_ratio: 0.25,
            min_history_bytes: 256 * 1024,
            min_retained_revisions: 100,
        }
    }
}

/// How to open a SQLite datastore.
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// Database file; its directory must exist or be creatable.
    pub path: PathBuf,
    /// Automatic compaction.
    pub compaction: CompactionPolicy,
}

impl SqliteOptions {
    /// Options for a database file with default compaction.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            compaction: CompactionPolicy::default(),
        }
    }
}

/// The SQLite [`Backend`].
pub struct SqliteBackend {
    path: PathBuf,
    tx: Mutex<Option<mpsc::Sender<Request>>>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    shared: Arc<Shared>,
    readers: Mutex<Vec<Connection>>,
}

impl SqliteBackend {
    /// Opens (creating if needed) the database and starts its writer thread. A file that is
    /// not a k1s database, or is damaged, gives [`StoreError::Corrupt`].
    pub fn open(options: SqliteOptions) -> Result<Self, StoreError> {
        if let Some(dir) = options.path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::Unavailable {
                message: format!("cannot create {}: {e}", dir.display()),
            })?;
        }
        let shared = Arc::new(Shared::default());
        let writer = Writer::open(options.path.clone(), shared.clone(), options.compaction)?;
        let (tx, rx) = mpsc::channel();
        let handle = std::thread::Builder::new()
            .name("k1s-sqlite-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| StoreError::Unavailable {
                message: format!("cannot start writer: {e}"),
            })?;
        Ok(Self {
            path: options.path,
            tx: Mutex::new(Some(tx)),
            writer: Mutex::new(Some(handle)),
            shared,
            readers: Mutex::new(Vec::new()),
        })
    }

    /// Opens a fresh database in a new temporary directory (tests and benchmarks).
    #[cfg(any(test, feature = "test-util"))]
    pub fn open_temp() -> Result<(Self, tempfile::TempDir), StoreError> {
        let dir = tempfile::tempdir().map_err(|e| StoreError::Unavailable {
            message: e.to_string(),
        })?;
        let backend = Self::open(SqliteOptions::new(dir.path().join("state.db")))?;
        Ok((backend, dir))
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stops the writer after the queued writes and checkpoints the WAL.
    pub fn close(&self) {
        self.tx.lock().take();
        if let Some(handle) = self.writer.lock().take() {
            let _ = handle.join();
        }
    }

    async fn request<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, StoreError>>) -> Request,
    ) -> Result<T, StoreError> {
        let (reply, rx) = oneshot::channel();
        {
            let tx = self.tx.lock();
            let tx = tx.as_ref().ok_or(StoreError::Closed)?;
            tx.send(make(reply)).map_err(|_| StoreError::Closed)?;
        }
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Runs a read on a pooled read-only connection off the async threads, and fails it
    /// if the revision it read at was compacted meanwhile.
    async fn read<T: Send + 'static>(
        &self,
        revision: Revision,
        f: impl FnOnce(&Connection, Revision) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<(T, Revision), StoreError> {
        let current = self.shared.revision.load(Ordering::SeqCst);
        let at = if revision == 0 { current } else { revision };
        if at > current {
            return Err(StoreError::FutureRevision {
                requested: at,
                current,
            });
        }
        self.check_compacted(at)?;
        let conn = match self.readers.lock().pop() {
            Some(c) => c,
            None => schema::open_reader(&self.path)?,
        };
        let (conn, result) = tokio::task::spawn_blocking(move || {
            let result = f(&conn, at);
            (conn, result)
        })
        .await
        .map_err(|e| StoreError::Unavailable {
            message: format!("read task failed: {e}"),
        })?;
        self.readers.lock().push(conn);
        let value = result.map_err(|e| StoreError::Unavailable {
            message: e.to_string(),
        })?;
        // Compaction announces its point before deleting rows: if the point is still at
        // or below `at`, nothing this read needed was gone.
        self.check_compacted(at)?;
        Ok((value, at))
    }

    fn check_compacted(&self, at: Revision) -> Result<(), StoreError> {
        let compacted = self.shared.compacted.load(Ordering::SeqCst);
        if at < compacted {
            return Err(StoreError::Compacted {
                requested: at,
                oldest: compacted,
            });
        }
        Ok(())
    }
}

impl Drop for SqliteBackend {
    fn drop(&mut self) {
        self.close();
    }
}

fn row_kv(key: String, id: i64, create: i64, value: Vec<u8>) -> KeyValue {
    KeyValue {
        key,
        value: Bytes::from(value),
        create_revision: create,
        mod_revision: id,
    }
}

#[async_trait]
impl Backend for SqliteBackend {
    async fn start(&self, sink: Arc<dyn EventSink>) -> Result<ListPage, StoreError> {
        self.request(|reply| Request::Start { sink, reply }).await
    }

    async fn write(&self, op: WriteOp) -> Result<KeyValue, StoreError> {
        self.request(|reply| Request::Write { op, reply }).await
    }

    async fn list(
        &self,
        prefix: &str,
        revision: Revision,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<ListPage, StoreError> {
        let from = start_after.unwrap_or(prefix).to_string();
        let inclusive = start_after.is_none();
        let end = prefix_end(prefix).unwrap_or_else(|| "\u{7f}".repeat(4));
        let ((items, more), at) = self
            .read(revision, move |conn, at| {
                // Newest row per key at or below `at`, walked in key order through the
                // (name, id DESC) index so a page stops reading once it is full.
                let mut stmt = conn.prepare_cached(
                    "SELECT name, id, create_revision, deleted, value FROM kv
                     WHERE name >= ?1 AND name < ?2 AND id <= ?3
                     ORDER BY name, id DESC",
                )?;
                let mut rows = stmt.query(params![from, end, at])?;
                let mut items = Vec::new();
                let mut last: Option<String> = None;
                let mut more = false;
                while let Some(row) = rows.next()? {
                    let name: String = row.get(0)?;
                    if last.as_deref() == Some(name.as_str()) || (!inclusive && name == from) {
                        continue;
                    }
                    last = Some(name.clone());
                    let deleted: bool = row.get(3)?;
                    if deleted {
                        continue;
                    }
                    if limit > 0 && items.len() == limit {
                        more = true;
                        break;
                    }
                    items.push(row_kv(name, row.get(1)?, row.get(2)?, row.get(4)?));
                }
                Ok((items, more))
            })
            .await?;
        Ok(ListPage {
            items,
            revision: at,
            more,
        })
    }

    async fn count(
        &self,
        prefix: &str,
        revision: Revision,
        start_after: Option<&str>,
    ) -> Result<u64, StoreError> {
        let from = start_after.unwrap_or(prefix).to_string();
        let inclusive = start_after.is_none();
        let end = prefix_end(prefix).unwrap_or_else(|| "\u{7f}".repeat(4));
        let (n, _) = self
            .read(revision, move |conn, at| {
                // The list's walk without reading values: newest row per key decides.
                let mut stmt = conn.prepare_cached(
                    "SELECT name, deleted FROM kv
                     WHERE name >= ?1 AND name < ?2 AND id <= ?3
                     ORDER BY name, id DESC",
                )?;
                let mut rows = stmt.query(params![from, end, at])?;
                let mut last: Option<String> = None;
                let mut n = 0u64;
                while let Some(row) = rows.next()? {
                    let name: String = row.get(0)?;
                    if last.as_deref() == Some(name.as_str()) || (!inclusive && name == from) {
                        continue;
                    }
                    let deleted: bool = row.get(1)?;
                    last = Some(name);
                    if !deleted {
                        n += 1;
                    }
                }
                Ok(n)
            })
            .await?;
        Ok(n)
    }

    async fn get(&self, key: &str, revision: Revision) -> Result<Option<KeyValue>, StoreError> {
        let key = key.to_string();
        let (kv, _) = self
            .read(revision, move |conn, at| {
                let mut stmt = conn.prepare_cached(
                    "SELECT id, create_revision, deleted, value FROM kv
                     WHERE name = ?1 AND id <= ?2 ORDER BY id DESC LIMIT 1",
                )?;
                let mut rows = stmt.query(params![key, at])?;
                let Some(row) = rows.next()? else {
                    return Ok(None);
                };
                if row.get::<_, bool>(2)? {
                    return Ok(None);
                }
                Ok(Some(row_kv(
                    key.clone(),
                    row.get(0)?,
                    row.get(1)?,
                    row.get(3)?,
                )))
            })
            .await?;
        Ok(kv)
    }

    async fn compact(&self, revision: Revision) -> Result<(), StoreError> {
        self.request(|reply| Request::Compact { revision, reply })
            .await
    }

    async fn check(&self) -> Result<CheckReport, StoreError> {
        self.request(|reply| Request::Check { reply }).await
    }

    async fn fresh_revision(&self) -> Result<Revision, StoreError> {
        // The only writer: every acknowledged write is in the sink already (no file
        // sizes to read on every list, as `info` would).
        Ok(self.shared.revision.load(Ordering::SeqCst))
    }

    fn info(&self) -> BackendInfo {
        let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        let wal = PathBuf::from(format!("{}-wal", self.path.display()));
        BackendInfo {
            name: format!("sqlite:{}", self.path.display()),
            revision: self.shared.revision.load(Ordering::SeqCst),
            compacted: self.shared.compacted.load(Ordering::SeqCst),
            disk_bytes: size(&self.path) + size(&wal),
            live_bytes: self.shared.live_bytes.load(Ordering::Relaxed),
            live_keys: self.shared.live_keys.load(Ordering::Relaxed),
        }
    }
}

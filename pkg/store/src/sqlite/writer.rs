//! The single writer: one thread owns the only writing connection, batches concurrent
//! writes into one transaction (one fsync), feeds the committed events to the sink, and
//! only then acknowledges them. Between batches it compacts history in small chunks and
//! returns free pages to the filesystem, so maintenance never holds up a write for long
//! and no request ever meets "database is locked". WAL checkpoints run on a thread of
//! their own (`checkpoint.rs`).

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rusqlite::{Connection, params};
use tokio::sync::oneshot;

use super::CompactionPolicy;
use super::checkpoint::{Checkpointer, RESTART_FRAMES};
use super::schema::{self, meta};
use crate::backend::{CheckReport, EventSink, ListPage};
use crate::{Event, EventKind, KeyValue, Revision, StoreError, WriteOp};

/// Most writes committed in one transaction.
const MAX_BATCH: usize = 512;
/// Revisions compacted per maintenance step; keeps each step to a few milliseconds.
const COMPACT_CHUNK: Revision = 500;
/// Free pages given back to the filesystem per maintenance step.
const VACUUM_PAGES: i64 = 128;
/// How often maintenance runs while writes keep coming.
const MAINTENANCE_EVERY: Duration = Duration::from_millis(100);
/// How often it runs while compaction has rows left to delete (small steps, often).
const COMPACTION_EVERY: Duration = Duration::from_millis(20);
/// Approximate bytes a row costs beyond its value (key, integers, index entry).
const ROW_OVERHEAD: u64 = 64;

/// Positions and sizes the writer publishes for readers and `info()`.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    pub revision: AtomicI64,
    pub compacted: AtomicI64,
    pub live_bytes: AtomicU64,
    pub live_keys: AtomicU64,
}

/// Work for the writer thread.
pub(crate) enum Request {
    Start {
        sink: Arc<dyn EventSink>,
        reply: oneshot::Sender<Result<ListPage, StoreError>>,
    },
    Write {
        op: WriteOp,
        reply: oneshot::Sender<Result<KeyValue, StoreError>>,
    },
    Compact {
        revision: Revision,
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
    Check {
        reply: oneshot::Sender<Result<CheckReport, StoreError>>,
    },
}

#[derive(Debug, Clone, Copy)]
struct KeyState {
    create_revision: Revision,
    mod_revision: Revision,
    len: u64,
}

pub(crate) struct Writer {
    conn: Connection,
    checkpointer: Checkpointer,
    path: PathBuf,
    shared: Arc<Shared>,
    policy: CompactionPolicy,
    sink: Option<Arc<dyn EventSink>>,
    /// Live keys and their positions, for preconditions without a query.
    index: HashMap<String, KeyState>,
    /// Live values loaded at open, handed to the sink's owner on start.
    initial: Option<Vec<KeyValue>>,
    revision: Revision,
    /// Announced compaction point (reads below fail).
    compacted: Revision,
    /// Rows up to here are physically gone.
    compact_done: Revision,
    /// Superseded rows not yet compacted: (revision that superseded it, bytes), in order.
    history: VecDeque<(Revision, u64)>,
    history_bytes: u64,
    live_bytes: u64,
    last_maintenance: Instant,
    /// Compaction has rows left to delete and its last step worked: step again soon.
    compacting: bool,
    last_reclaim: Instant,
}

fn write_error(err: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode;
    let message = match err.sqlite_error_code() {
        Some(ErrorCode::DiskFull) => "database or disk is full".to_string(),
        _ => err.to_string(),
    };
    StoreError::Unavailable { message }
}

impl Writer {
    /// Opens the database and loads the live state and history accounting.
    pub(crate) fn open(
        path: PathBuf,
        shared: Arc<Shared>,
        policy: CompactionPolicy,
    ) -> Result<Self, StoreError> {
        let conn = schema::open_writer(&path)?;
        let read = |e| schema::open_error(&path, "cannot read database", e);
        let mut revision = schema::read_meta(&conn, meta::REVISION).map_err(read)?;
        let compacted = schema::read_meta(&conn, meta::COMPACTED).map_err(read)?;
        let compact_done = schema::read_meta(&conn, meta::COMPACT_DONE).map_err(read)?;

        // One pass in revision order rebuilds the live set and which rows are history.
        let mut latest: HashMap<String, (KeyState, bool, Bytes)> = HashMap::new();
        let mut history = VecDeque::new();
        let mut history_bytes = 0;
        {
            let mut stmt = conn.prepare(schema::SELECT_LOG).map_err(read)?;
            let mut rows = stmt.query([]).map_err(read)?;
            while let Some(row) = rows.next().map_err(read)? {
                let schema::LogRow {
                    id,
                    name,
                    create_revision,
                    deleted,
                    value,
                    intact,
                    ..
                } = schema::LogRow::read(row).map_err(read)?;
                if !intact {
                    return Err(schema::corrupt(
                        &path,
                        "damaged row",
                        format!(
                            "revision {id} ({name}) does not match its checksum; restore the data dir from a backup"
                        ),
                    ));
                }
                let len = value.len() as u64;
                let state = KeyState {
                    create_revision,
                    mod_revision: id,
                    len,
                };
                // The row this one supersedes becomes history at this revision; a tombstone
                // was counted as history at its own revision already.
                if let Some((old, false, _)) =
                    latest.insert(name.clone(), (state, deleted, Bytes::from(value)))
                {
                    let cost = old.len + ROW_OVERHEAD + name.len() as u64;
                    history.push_back((id, cost));
                    history_bytes += cost;
                }
                if deleted {
                    let cost = len + ROW_OVERHEAD + name.len() as u64;
                    history.push_back((id, cost));
                    history_bytes += cost;
                }
                revision = revision.max(id);
            }
        }
        let mut index = HashMap::with_capacity(latest.len());
        let mut initial = Vec::with_capacity(latest.len());
        let mut live_bytes = 0;
        for (key, (state, deleted, value)) in latest {
            if deleted {
                continue;
            }
            live_bytes += state.len;
            initial.push(KeyValue {
                key: key.clone(),
                value,
                create_revision: state.create_revision,
                mod_revision: state.mod_revision,
            });
            index.insert(key, state);
        }
        initial.sort_by(|a, b| a.key.cmp(&b.key));
        if compacted > revision || compact_done > compacted {
            return Err(schema::corrupt(
                &path,
                "inconsistent positions",
                format!(
                    "revision {revision}, compacted {compacted}, compacted up to {compact_done}"
                ),
            ));
        }
        // Rows superseded at or below the compaction point are already accounted as gone.
        while history.front().is_some_and(|(r, _)| *r <= compacted) {
            if let Some((_, cost)) = history.pop_front() {
                history_bytes -= cost;
            }
        }
        shared.revision.store(revision, Ordering::SeqCst);
        shared.compacted.store(compacted, Ordering::SeqCst);
        shared.live_bytes.store(live_bytes, Ordering::Relaxed);
        shared
            .live_keys
            .store(index.len() as u64, Ordering::Relaxed);
        let checkpointer = Checkpointer::start(&path)?;
        Ok(Self {
            conn,
            checkpointer,
            path,
            shared,
            policy,
            sink: None,
            index,
            initial: Some(initial),
            revision,
            compacted,
            compact_done,
            history,
            history_bytes,
            live_bytes,
            last_maintenance: Instant::now(),
            compacting: false,
            last_reclaim: Instant::now(),
        })
    }

    /// Runs until every sender is gone.
    pub(crate) fn run(mut self, rx: Receiver<Request>) {
        loop {
            let wait = if self.compacting {
                COMPACTION_EVERY
            } else {
                MAINTENANCE_EVERY
            };
            let first = match rx.recv_timeout(wait) {
                Ok(req) => req,
                Err(RecvTimeoutError::Timeout) => {
                    self.maintenance();
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            };
            let mut writes = Vec::new();
            let mut next = Some(first);
            // Everything that queued up while the last commit was syncing goes into this
            // transaction: that is the group commit.
            while let Some(req) = next.take() {
                match req {
                    Request::Write { op, reply } => writes.push((op, reply)),
                    other => {
                        if !writes.is_empty() {
                            self.commit_batch(std::mem::take(&mut writes));
                        }
                        self.handle_other(other);
                    }
                }
                if writes.len() < MAX_BATCH {
                    next = rx.try_recv().ok();
                }
            }
            if !writes.is_empty() {
                self.commit_batch(writes);
            }
            self.finish_checkpoint();
            let since = self.last_maintenance.elapsed();
            if since >= MAINTENANCE_EVERY || (self.compacting && since >= COMPACTION_EVERY) {
                self.maintenance();
            }
        }
        // Leave a small WAL behind for the next start.
        self.checkpointer.stop();
        let _ = self.conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);");
    }

    /// Once the WAL has grown to [`RESTART_FRAMES`] and a background checkpoint has just
    /// copied nearly all of it, copies the rest so the next commit starts the WAL from its
    /// beginning again; without this the WAL would grow for as long as writes keep coming.
    fn finish_checkpoint(&self) {
        let progress = &self.checkpointer.progress;
        if progress.frames.load(Ordering::Relaxed) < RESTART_FRAMES
            || !progress.fresh.swap(false, Ordering::Acquire)
        {
            return;
        }
        let started = Instant::now();
        // PASSIVE: returns at once if the background pass is still running or a reader
        // holds old frames; the next background pass gives another chance.
        let result = super::checkpoint::wal_checkpoint(&self.conn, "PASSIVE");
        match result {
            Ok((busy, frames, copied)) => {
                progress.frames.store(0, Ordering::Relaxed);
                tracing::debug!(
                    busy,
                    frames,
                    copied,
                    elapsed_us = started.elapsed().as_micros() as u64,
                    "WAL checkpoint finished by the writer"
                );
            }
            Err(e) => tracing::warn!(error = %e, "WAL checkpoint failed"),
        }
    }

    fn handle_other(&mut self, req: Request) {
        match req {
            Request::Start { sink, reply } => {
                let items = match self.initial.take() {
                    Some(items) => Ok(items),
                    None => self.load_live(),
                };
                let page = items.map(|items| ListPage {
                    items,
                    revision: self.revision,
                    more: false,
                });
                if let Ok(page) = &page {
                    sink.reset(page.clone());
                }
                self.sink = Some(sink);
                let _ = reply.send(page);
            }
            Request::Compact { revision, reply } => {
                let _ = reply.send(self.announce_compaction(revision));
            }
            Request::Check { reply } => {
                let _ = reply.send(self.check());
            }
            Request::Write { .. } => unreachable_write(),
        }
    }

    fn load_live(&self) -> Result<Vec<KeyValue>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT value FROM kv WHERE id = ?1")
            .map_err(write_error)?;
        let mut items = Vec::with_capacity(self.index.len());
        for (key, st) in &self.index {
            let value: Vec<u8> = stmt
                .query_row([st.mod_revision], |r| r.get(0))
                .map_err(write_error)?;
            items.push(KeyValue {
                key: key.clone(),
                value: Bytes::from(value),
                create_revision: st.create_revision,
                mod_revision: st.mod_revision,
            });
        }
        items.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(items)
    }

    /// Writes a batch in one transaction; acknowledges only after commit and sink.
    fn commit_batch(
        &mut self,
        batch: Vec<(WriteOp, oneshot::Sender<Result<KeyValue, StoreError>>)>,
    ) {
        struct Staged {
            kind: EventKind,
            kv: KeyValue,
            prev: Option<KeyState>,
        }
        let started = Instant::now();
        let mut overlay: HashMap<String, Option<KeyState>> = HashMap::new();
        let mut outcomes: Vec<Result<Staged, StoreError>> = Vec::with_capacity(batch.len());
        let mut next = self.revision;
        let result = (|| -> Result<(), rusqlite::Error> {
            let tx = self.conn.unchecked_transaction()?;
            {
                let mut insert = tx.prepare_cached(
                    "INSERT INTO kv (id, name, create_revision, prev_revision, deleted, value, checksum)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )?;
                let mut insert = |row: schema::Row<'_>| {
                    let sum = schema::row_checksum(&row);
                    insert.execute(params![
                        row.id,
                        row.name,
                        row.create_revision,
                        row.prev_revision,
                        row.deleted,
                        row.value,
                        sum
                    ])
                };
                for (op, _) in &batch {
                    let key = op.key();
                    let current = match overlay.get(key) {
                        Some(st) => *st,
                        None => self.index.get(key).copied(),
                    };
                    let staged = match (op, current) {
                        (WriteOp::Create { key, .. }, Some(_)) => {
                            Err(StoreError::AlreadyExists { key: key.clone() })
                        }
                        (WriteOp::Create { key, value }, None) => {
                            next += 1;
                            insert(schema::Row {
                                id: next,
                                name: key,
                                create_revision: next,
                                prev_revision: 0,
                                deleted: false,
                                value,
                            })?;
                            Ok(Staged {
                                kind: EventKind::Created,
                                kv: KeyValue {
                                    key: key.clone(),
                                    value: value.clone(),
                                    create_revision: next,
                                    mod_revision: next,
                                },
                                prev: None,
                            })
                        }
                        (WriteOp::Update { key, .. } | WriteOp::Delete { key, .. }, None) => {
                            Err(StoreError::NotFound { key: key.clone() })
                        }
                        (
                            WriteOp::Update {
                                key,
                                value,
                                expected,
                            }
                            | WriteOp::Delete {
                                key,
                                value,
                                expected,
                            },
                            Some(cur),
                        ) => {
                            if *expected != 0 && *expected != cur.mod_revision {
                                Err(StoreError::Conflict {
                                    key: key.clone(),
                                    expected: *expected,
                                    current: Box::new(self.current_kv(&tx, key, cur)?),
                                })
                            } else {
                                let deleted = matches!(op, WriteOp::Delete { .. });
                                next += 1;
                                insert(schema::Row {
                                    id: next,
                                    name: key,
                                    create_revision: cur.create_revision,
                                    prev_revision: cur.mod_revision,
                                    deleted,
                                    value,
                                })?;
                                Ok(Staged {
                                    kind: if deleted {
                                        EventKind::Deleted
                                    } else {
                                        EventKind::Updated
                                    },
                                    kv: KeyValue {
                                        key: key.clone(),
                                        value: value.clone(),
                                        create_revision: cur.create_revision,
                                        mod_revision: next,
                                    },
                                    prev: Some(cur),
                                })
                            }
                        }
                    };
                    if let Ok(s) = &staged {
                        let after = (s.kind != EventKind::Deleted).then_some(KeyState {
                            create_revision: s.kv.create_revision,
                            mod_revision: s.kv.mod_revision,
                            len: s.kv.value.len() as u64,
                        });
                        overlay.insert(key.to_string(), after);
                    }
                    outcomes.push(staged);
                }
            }
            if next != self.revision {
                schema::write_meta(&tx, meta::REVISION, next)?;
                tx.commit()?;
            }
            Ok(())
        })();
        let committed = started.elapsed();

        if let Err(err) = result {
            // Nothing of this batch is on disk; the in-memory state is untouched. Answers
            // computed against the failed writes may be wrong, so every caller gets the
            // failure and may retry.
            let err = write_error(err);
            tracing::warn!(path = %self.path.display(), error = %err, "write batch failed");
            for (_, reply) in batch {
                let _ = reply.send(Err(StoreError::Unavailable {
                    message: err.to_string(),
                }));
            }
            return;
        }

        let mut events = Vec::new();
        let mut replies = Vec::with_capacity(batch.len());
        for ((_, reply), outcome) in batch.into_iter().zip(outcomes) {
            match outcome {
                Ok(staged) => {
                    self.account(&staged.kv, staged.kind, staged.prev);
                    let kv = Arc::new(staged.kv);
                    events.push(Event {
                        kind: staged.kind,
                        kv: kv.clone(),
                        prev: None,
                    });
                    replies.push((reply, Ok((*kv).clone())));
                }
                Err(e) => replies.push((reply, Err(e))),
            }
        }
        if next != self.revision {
            self.checkpointer.committed();
        }
        self.revision = next;
        self.shared.revision.store(next, Ordering::SeqCst);
        self.shared
            .live_bytes
            .store(self.live_bytes, Ordering::Relaxed);
        self.shared
            .live_keys
            .store(self.index.len() as u64, Ordering::Relaxed);
        let writes = replies.len();
        if !events.is_empty()
            && let Some(sink) = &self.sink
        {
            sink.apply(events);
        }
        for (reply, result) in replies {
            let _ = reply.send(result);
        }
        tracing::debug!(
            writes,
            commit_us = committed.as_micros() as u64,
            elapsed_us = started.elapsed().as_micros() as u64,
            "write batch"
        );
    }

    fn current_kv(
        &self,
        conn: &Connection,
        key: &str,
        st: KeyState,
    ) -> Result<KeyValue, rusqlite::Error> {
        let value: Vec<u8> = conn
            .prepare_cached("SELECT value FROM kv WHERE id = ?1")?
            .query_row([st.mod_revision], |r| r.get(0))?;
        Ok(KeyValue {
            key: key.to_string(),
            value: Bytes::from(value),
            create_revision: st.create_revision,
            mod_revision: st.mod_revision,
        })
    }

    /// Updates the live index and the history accounting after a committed write.
    fn account(&mut self, kv: &KeyValue, kind: EventKind, prev: Option<KeyState>) {
        let len = kv.value.len() as u64;
        let overhead = ROW_OVERHEAD + kv.key.len() as u64;
        if let Some(prev) = prev {
            self.live_bytes -= prev.len.min(self.live_bytes);
            self.history
                .push_back((kv.mod_revision, prev.len + overhead));
            self.history_bytes += prev.len + overhead;
        }
        match kind {
            EventKind::Deleted => {
                self.index.remove(&kv.key);
                self.history.push_back((kv.mod_revision, len + overhead));
                self.history_bytes += len + overhead;
            }
            EventKind::Created | EventKind::Updated => {
                self.live_bytes += len;
                self.index.insert(
                    kv.key.clone(),
                    KeyState {
                        create_revision: kv.create_revision,
                        mod_revision: kv.mod_revision,
                        len,
                    },
                );
            }
        }
    }

    /// Makes `revision` the compaction point: readers below it now fail, and the rows it
    /// frees are deleted in chunks by later maintenance.
    fn announce_compaction(&mut self, revision: Revision) -> Result<(), StoreError> {
        let revision = revision.min(self.revision);
        if revision <= self.compacted {
            return Ok(());
        }
        // Readers check the announced point after their query, so it must be visible
        // before any row is deleted.
        self.shared.compacted.store(revision, Ordering::SeqCst);
        schema::write_meta(&self.conn, meta::COMPACTED, revision).map_err(write_error)?;
        self.compacted = revision;
        while self.history.front().is_some_and(|(r, _)| *r <= revision) {
            if let Some((_, cost)) = self.history.pop_front() {
                self.history_bytes -= cost.min(self.history_bytes);
            }
        }
        Ok(())
    }

    /// The automatic compaction point: keeps history within its byte budget, but always
    /// the last `min_retained_revisions` revisions.
    fn auto_compaction_target(&self) -> Option<Revision> {
        let budget = ((self.live_bytes as f64 * self.policy.history_ratio) as u64)
            .max(self.policy.min_history_bytes);
        // Hysteresis: compact only once history is clearly over budget.
        if self.history_bytes <= budget + budget / 4 {
            return None;
        }
        let newest_allowed = self.revision - self.policy.min_retained_revisions;
        let mut bytes = self.history_bytes;
        let mut target = None;
        for &(rev, cost) in &self.history {
            if bytes <= budget || rev > newest_allowed {
                break;
            }
            bytes -= cost;
            target = Some(rev);
        }
        // Entries sharing a revision (a deletion and its tombstone) go together.
        target.map(|t| {
            self.history
                .iter()
                .take_while(|(r, _)| *r <= t)
                .last()
                .map_or(t, |(r, _)| *r)
        })
    }

    /// One bounded step of background work.
    fn maintenance(&mut self) {
        self.last_maintenance = Instant::now();
        if self.policy.auto
            && let Some(target) = self.auto_compaction_target()
            && let Err(e) = self.announce_compaction(target)
        {
            tracing::warn!(error = %e, "cannot record compaction point");
        }
        // One step per pause: a compaction step, or every MAINTENANCE_EVERY a vacuum
        // step in between (under steady churn compaction always has work, and free pages
        // would otherwise never go back).
        let behind = self.compact_done < self.compacted;
        let reclaim_due = self.last_reclaim.elapsed() >= MAINTENANCE_EVERY;
        if behind && !(self.compacting && reclaim_due) {
            let step = self.compact_chunk();
            if let Err(e) = &step {
                tracing::warn!(error = %e, "compaction step failed");
            }
            self.compacting = step.is_ok() && self.compact_done < self.compacted;
            return;
        }
        self.compacting = behind && self.compacting;
        self.last_reclaim = Instant::now();
        if let Err(e) = self.reclaim_pages() {
            tracing::warn!(error = %e, "cannot reclaim free pages");
        }
    }

    /// Deletes the rows freed by compaction in one revision range.
    fn compact_chunk(&mut self) -> Result<(), StoreError> {
        let started = Instant::now();
        let from = self.compact_done;
        let to = (from + COMPACT_CHUNK).min(self.compacted);
        let tx = self.conn.unchecked_transaction().map_err(write_error)?;
        // Rows superseded by a write in the range, then tombstones in the range.
        let superseded = tx
            .prepare_cached(
                "DELETE FROM kv WHERE id IN
               (SELECT prev_revision FROM kv WHERE id > ?1 AND id <= ?2 AND prev_revision > 0)",
            )
            .and_then(|mut s| s.execute(params![from, to]))
            .map_err(write_error)?;
        let tombstones = tx
            .prepare_cached("DELETE FROM kv WHERE id > ?1 AND id <= ?2 AND deleted = 1")
            .and_then(|mut s| s.execute(params![from, to]))
            .map_err(write_error)?;
        schema::write_meta(&tx, meta::COMPACT_DONE, to).map_err(write_error)?;
        tx.commit().map_err(write_error)?;
        self.compact_done = to;
        self.checkpointer.committed();
        tracing::debug!(
            from,
            to,
            rows = superseded + tombstones,
            elapsed_us = started.elapsed().as_micros() as u64,
            "compaction step"
        );
        Ok(())
    }

    /// Gives free pages back to the filesystem a few at a time.
    fn reclaim_pages(&mut self) -> Result<(), StoreError> {
        let pragma = |name: &str| -> Result<i64, StoreError> {
            self.conn
                .query_row(&format!("PRAGMA {name}"), [], |r| r.get(0))
                .map_err(write_error)
        };
        let free = pragma("freelist_count")?;
        let total = pragma("page_count")?;
        if free > 64 && free * 10 > total {
            let started = Instant::now();
            // The pragma frees one page per row it steps through (execute_batch would
            // step once: one page), so every row is read.
            let mut stmt = self
                .conn
                .prepare_cached(&format!("PRAGMA incremental_vacuum({VACUUM_PAGES})"))
                .map_err(write_error)?;
            let mut rows = stmt.query([]).map_err(write_error)?;
            while rows.next().map_err(write_error)?.is_some() {}
            self.checkpointer.committed();
            tracing::debug!(
                free,
                total,
                elapsed_us = started.elapsed().as_micros() as u64,
                "free pages returned"
            );
        }
        Ok(())
    }

    /// The store's own consistency check: SQLite's, then the log's invariants.
    fn check(&mut self) -> Result<CheckReport, StoreError> {
        let corrupt = |e: rusqlite::Error| StoreError::Corrupt {
            message: e.to_string(),
        };
        let mut report = CheckReport {
            revision: self.revision,
            ..CheckReport::default()
        };
        let quick: String = self
            .conn
            .query_row("PRAGMA quick_check", [], |r| r.get(0))
            .map_err(corrupt)?;
        if quick != "ok" {
            report.problems.push(format!("sqlite quick_check: {quick}"));
        }
        let mut stmt = self.conn.prepare(schema::SELECT_LOG).map_err(corrupt)?;
        let mut rows = stmt.query([]).map_err(corrupt)?;
        let mut latest: HashMap<String, (Revision, bool)> = HashMap::new();
        let mut names: HashMap<Revision, String> = HashMap::new();
        while let Some(row) = rows.next().map_err(corrupt)? {
            let schema::LogRow {
                id,
                name,
                create_revision: create,
                prev_revision: prev,
                deleted,
                intact,
                ..
            } = schema::LogRow::read(row).map_err(corrupt)?;
            report.rows += 1;
            if !intact {
                report
                    .problems
                    .push(format!("row {id} ({name}) does not match its checksum"));
            }
            if id > self.revision {
                report
                    .problems
                    .push(format!("row {id} is beyond revision {}", self.revision));
            }
            if create > id || prev >= id {
                report
                    .problems
                    .push(format!("row {id} ({name}) has revisions out of order"));
            }
            if prev > 0
                && let Some(prev_name) = names.get(&prev)
                && prev_name != &name
            {
                report.problems.push(format!(
                    "row {id} ({name}) follows row {prev} of {prev_name}"
                ));
            }
            if prev == 0 && create != id {
                report.problems.push(format!(
                    "row {id} ({name}) is a create with create_revision {create}"
                ));
            }
            names.insert(id, name.clone());
            latest.insert(name, (id, deleted));
        }
        for (name, (id, deleted)) in &latest {
            match (self.index.get(name), deleted) {
                (Some(st), false) if st.mod_revision == *id => {}
                (None, true) => {}
                (st, _) => report.problems.push(format!(
                    "{name}: log ends at row {id} (deleted: {deleted}) but the live index has {:?}",
                    st.map(|s| s.mod_revision)
                )),
            }
        }
        for name in self.index.keys() {
            if !latest.contains_key(name) {
                report
                    .problems
                    .push(format!("{name}: live in the index but absent from the log"));
            }
        }
        report.live_keys = self.index.len() as u64;
        Ok(report)
    }
}

fn unreachable_write() {
    // Writes are batched by the caller of handle_other and never reach it.
    tracing::error!("write request routed to the non-write path");
}

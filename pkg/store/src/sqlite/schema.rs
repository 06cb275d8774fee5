//! The on-disk layout: one log table in kine's shape plus a small meta table.
//!
//! `kv.id` is the revision. A row is one write: a create (`prev_revision = 0`), an update
//! (`prev_revision` = the row it supersedes) or a deletion tombstone (`deleted = 1`, value
//! = the object's last state). Compaction deletes superseded rows and old tombstones.
//! Every row carries a CRC-32 of its contents: SQLite checks its page structure but not
//! the bytes of a value, and a flipped bit in an object must stop the server at start
//! rather than be served.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension};

use crate::{Revision, StoreError};

/// Version of the layout below; bumped when it changes incompatibly.
pub(crate) const SCHEMA_VERSION: i64 = 2;

const CREATE: &str = "
CREATE TABLE IF NOT EXISTS kv (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    create_revision INTEGER NOT NULL,
    prev_revision INTEGER NOT NULL,
    deleted INTEGER NOT NULL,
    value BLOB NOT NULL,
    checksum INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS kv_name_id ON kv (name, id DESC);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
";

/// Bytes a restarted WAL file is cut back to (a burst may have grown it beyond).
const WAL_SIZE_LIMIT: u64 = 4 << 20;

/// Keys of the meta table.
pub(crate) mod meta {
    /// Highest revision ever assigned (rows may have been compacted away).
    pub const REVISION: &str = "revision";
    /// Reads below this revision fail with Compacted.
    pub const COMPACTED: &str = "compacted";
    /// Rows up to this revision have been compacted (≤ COMPACTED while work is pending).
    pub const COMPACT_DONE: &str = "compact_done";
    /// [`super::SCHEMA_VERSION`] of the file.
    pub const SCHEMA: &str = "schema_version";
}

pub(crate) fn corrupt(path: &Path, what: &str, err: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        message: format!("{}: {what}: {err}", path.display()),
    }
}

fn unavailable(path: &Path, what: &str, err: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable {
        message: format!("{}: {what}: {err}", path.display()),
    }
}

/// Maps an error from opening or first reading a database to a store error: files that
/// are not databases or fail integrity checks are corrupt, everything else unavailable.
pub(crate) fn open_error(path: &Path, what: &str, err: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode;
    match err.sqlite_error_code() {
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => corrupt(path, what, err),
        _ => unavailable(path, what, err),
    }
}

/// Opens (creating if needed) the writer connection with the durability settings k1s
/// relies on: WAL, `synchronous = FULL` (every commit is fsynced before it returns) and
/// incremental auto-vacuum so that compaction can give pages back to the filesystem.
pub(crate) fn open_writer(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| open_error(path, "cannot open database", e))?;
    // auto_vacuum must be chosen before the first table exists; on an existing file it
    // is a no-op unless already set.
    conn.execute_batch(
        "PRAGMA auto_vacuum = INCREMENTAL;
         PRAGMA journal_mode = WAL;
         PRAGMA synchronous = FULL;
         PRAGMA foreign_keys = OFF;
         PRAGMA cache_size = -16384;",
    )
    .map_err(|e| open_error(path, "cannot configure database", e))?;
    // Checkpoints run on their own connection and thread (`checkpoint.rs`): SQLite's
    // automatic one would copy the whole WAL inside the commit that crosses its size.
    // The size limit truncates a WAL that a burst grew once it restarts.
    conn.execute_batch(&format!(
        "PRAGMA wal_autocheckpoint = 0;
         PRAGMA journal_size_limit = {WAL_SIZE_LIMIT};"
    ))
    .map_err(|e| open_error(path, "cannot configure database", e))?;
    // Only this connection writes, so waiting on a lock means something else has the
    // file open; say so instead of hanging.
    conn.busy_timeout(Duration::from_secs(5))
        .map_err(|e| open_error(path, "cannot configure database", e))?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .map_err(|e| open_error(path, "cannot read journal mode", e))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(unavailable(path, "cannot enable WAL journal", mode));
    }
    conn.execute_batch(CREATE)
        .map_err(|e| open_error(path, "cannot create tables", e))?;
    let schema: Option<i64> = conn
        .query_row(
            "SELECT value FROM meta WHERE key = ?1",
            [meta::SCHEMA],
            |r| r.get(0),
        )
        .optional()
        .map_err(|e| open_error(path, "cannot read schema version", e))?;
    match schema {
        None => {
            conn.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2)",
                rusqlite::params![meta::SCHEMA, SCHEMA_VERSION],
            )
            .map_err(|e| open_error(path, "cannot write schema version", e))?;
        }
        Some(1) => add_checksums(&conn)
            .map_err(|e| open_error(path, "cannot upgrade the layout to version 2", e))?,
        Some(v) if v == SCHEMA_VERSION => {}
        Some(v) => {
            return Err(corrupt(
                path,
                "unsupported schema version",
                format!("{v} (this k1s reads {SCHEMA_VERSION})"),
            ));
        }
    }
    Ok(conn)
}

/// Upgrades a version 1 file (no checksums) in one transaction.
fn add_checksums(conn: &Connection) -> rusqlite::Result<()> {
    let tx = conn.unchecked_transaction()?;
    tx.execute_batch("ALTER TABLE kv ADD COLUMN checksum INTEGER NOT NULL DEFAULT 0")?;
    {
        let mut read =
            tx.prepare("SELECT id, name, create_revision, prev_revision, deleted, value FROM kv")?;
        let mut write = tx.prepare("UPDATE kv SET checksum = ?2 WHERE id = ?1")?;
        let mut rows = read.query([])?;
        while let Some(row) = rows.next()? {
            let id: i64 = row.get(0)?;
            let name: String = row.get(1)?;
            let value: Vec<u8> = row.get(5)?;
            let sum = row_checksum(&Row {
                id,
                name: &name,
                create_revision: row.get(2)?,
                prev_revision: row.get(3)?,
                deleted: row.get(4)?,
                value: &value,
            });
            write.execute(rusqlite::params![id, sum])?;
        }
    }
    write_meta(&tx, meta::SCHEMA, SCHEMA_VERSION)?;
    tx.commit()
}

/// The stored fields of one log row.
pub(crate) struct Row<'a> {
    pub id: Revision,
    pub name: &'a str,
    pub create_revision: Revision,
    pub prev_revision: Revision,
    pub deleted: bool,
    pub value: &'a [u8],
}

/// CRC-32 over every field of a row, stored beside it and verified when read at start.
pub(crate) fn row_checksum(row: &Row<'_>) -> i64 {
    let mut h = crc32fast::Hasher::new();
    h.update(&row.id.to_le_bytes());
    h.update(&row.create_revision.to_le_bytes());
    h.update(&row.prev_revision.to_le_bytes());
    h.update(&[u8::from(row.deleted)]);
    h.update(&(row.name.len() as u64).to_le_bytes());
    h.update(row.name.as_bytes());
    h.update(row.value);
    i64::from(h.finalize())
}

/// Every log row in revision order, for the passes that read the whole log.
pub(crate) const SELECT_LOG: &str =
    "SELECT id, name, create_revision, prev_revision, deleted, value, checksum FROM kv ORDER BY id";

/// One row of [`SELECT_LOG`], owned, with whether it matches its checksum.
pub(crate) struct LogRow {
    pub id: Revision,
    pub name: String,
    pub create_revision: Revision,
    pub prev_revision: Revision,
    pub deleted: bool,
    pub value: Vec<u8>,
    /// The stored checksum matches the row's contents.
    pub intact: bool,
}

impl LogRow {
    /// Reads a row selected by [`SELECT_LOG`] and verifies its checksum.
    pub(crate) fn read(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        let mut r = LogRow {
            id: row.get(0)?,
            name: row.get(1)?,
            create_revision: row.get(2)?,
            prev_revision: row.get(3)?,
            deleted: row.get(4)?,
            value: row.get(5)?,
            intact: false,
        };
        let stored: i64 = row.get(6)?;
        r.intact = stored
            == row_checksum(&Row {
                id: r.id,
                name: &r.name,
                create_revision: r.create_revision,
                prev_revision: r.prev_revision,
                deleted: r.deleted,
                value: &r.value,
            });
        Ok(r)
    }
}

/// Opens the connection that checkpoints the WAL in the background. It never waits for
/// a lock (busy timeout 0): a checkpoint that would wait is tried again later.
pub(crate) fn open_checkpointer(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| open_error(path, "cannot open database for checkpoints", e))?;
    conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA wal_autocheckpoint = 0;")
        .map_err(|e| open_error(path, "cannot configure the checkpoint connection", e))?;
    conn.busy_timeout(Duration::ZERO)
        .map_err(|e| open_error(path, "cannot configure the checkpoint connection", e))?;
    Ok(conn)
}

/// Opens a read-only connection for list and get at old revisions.
pub(crate) fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| open_error(path, "cannot open database for reading", e))?;
    conn.busy_timeout(Duration::from_secs(5))
        .map_err(|e| open_error(path, "cannot configure reader", e))?;
    Ok(conn)
}

/// Reads one meta value (0 when absent).
pub(crate) fn read_meta(conn: &Connection, key: &str) -> rusqlite::Result<Revision> {
    Ok(conn
        .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
        .optional()?
        .unwrap_or(0))
}

/// Writes one meta value.
pub(crate) fn write_meta(conn: &Connection, key: &str, value: Revision) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO meta (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )?
    .execute(rusqlite::params![key, value])?;
    Ok(())
}

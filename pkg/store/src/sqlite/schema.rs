//! The on-disk layout: one log table in kine's shape plus a small meta table.
//!
//! `kv.id` is the revision. A row is one write: a create (`prev_revision = 0`), an update
//! (`prev_revision` = the row it supersedes) or a deletion tombstone (`deleted = 1`, value
//! = the object's last state). Compaction deletes superseded rows and old tombstones.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension};

use crate::{Revision, StoreError};

/// Version of the layout below; bumped when it changes incompatibly.
pub(crate) const SCHEMA_VERSION: i64 = 1;

const CREATE: &str = "
CREATE TABLE IF NOT EXISTS kv (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    create_revision INTEGER NOT NULL,
    prev_revision INTEGER NOT NULL,
    deleted INTEGER NOT NULL,
    value BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS kv_name_id ON kv (name, id DESC);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
";

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

//! WAL checkpoints off the write path.
//!
//! SQLite's automatic checkpoint runs inside the commit that crosses its threshold: that
//! commit copies the whole WAL (4 MiB by default) into the database file and fsyncs it
//! while every queued write waits. Here the writer connection has automatic checkpoints
//! off and a second connection on its own thread copies the WAL in the background with
//! PASSIVE checkpoints, which never block the writer or readers.
//!
//! A PASSIVE checkpoint alone does not keep the WAL file small: SQLite starts writing the
//! WAL from its beginning again only when a write transaction begins while every frame
//! is already copied, and under steady writes a commit always lands between the end of a
//! background checkpoint and the next write. So once the WAL holds [`RESTART_FRAMES`]
//! frames, the writer copies the few frames committed since the background pass itself,
//! right after that pass, and its next transaction restarts the WAL.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::time::{Duration, Instant};

use rusqlite::Connection;

use super::schema;
use crate::StoreError;

/// How often the background checkpoint runs at most while writes keep coming.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);
/// Commits that make a background checkpoint worth its fsync of the database file: an
/// idle cluster's few writes a second must not cost a checkpoint each (SD cards).
const PASS_COMMITS: u64 = 32;
/// WAL size (in 4 KiB frames) at which the writer finishes a checkpoint so that the WAL
/// restarts from its beginning: half SQLite's automatic checkpoint size, since the WAL
/// keeps growing until the next background pass ends.
pub(crate) const RESTART_FRAMES: i64 = 500;
/// Writes idle this long before the rest of the WAL is copied and the file truncated.
const TRUNCATE_AFTER_IDLE: Duration = Duration::from_secs(10);

/// What the background checkpointer last saw, for the writer.
#[derive(Debug, Default)]
pub(crate) struct WalProgress {
    /// Commits so far (the writer counts them).
    pub commits: AtomicU64,
    /// Frames in the WAL at the last background checkpoint.
    pub frames: AtomicI64,
    /// A background pass finished since the writer last looked: only the frames committed
    /// since then are not yet copied.
    pub fresh: AtomicBool,
}

/// The writer's handle on the checkpoint thread.
pub(crate) struct Checkpointer {
    wake: Option<SyncSender<()>>,
    handle: Option<std::thread::JoinHandle<()>>,
    /// Progress the thread publishes.
    pub progress: Arc<WalProgress>,
}

impl Checkpointer {
    /// Opens the checkpoint connection and starts its thread.
    pub(crate) fn start(path: &Path) -> Result<Self, StoreError> {
        let conn = schema::open_checkpointer(path)?;
        let progress = Arc::new(WalProgress::default());
        let (wake, rx) = std::sync::mpsc::sync_channel(1);
        let worker = Worker {
            conn,
            path: path.to_path_buf(),
            progress: progress.clone(),
        };
        let handle = std::thread::Builder::new()
            .name("k1s-sqlite-checkpoint".into())
            .spawn(move || worker.run(rx))
            .map_err(|e| StoreError::Unavailable {
                message: format!("cannot start the checkpoint thread: {e}"),
            })?;
        Ok(Self {
            wake: Some(wake),
            handle: Some(handle),
            progress,
        })
    }

    /// Tells the thread that a commit added frames to the WAL (never blocks).
    pub(crate) fn committed(&self) {
        self.progress.commits.fetch_add(1, Ordering::Relaxed);
        if let Some(wake) = &self.wake {
            match wake.try_send(()) {
                Ok(()) | Err(TrySendError::Full(())) => {}
                Err(TrySendError::Disconnected(())) => {
                    tracing::warn!("the SQLite checkpoint thread is gone");
                }
            }
        }
    }

    /// Stops the thread after its current pass.
    pub(crate) fn stop(&mut self) {
        self.wake.take();
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop();
    }
}

struct Worker {
    conn: Connection,
    path: PathBuf,
    progress: Arc<WalProgress>,
}

impl Worker {
    fn run(self, wake: Receiver<()>) {
        // Commits up to this count are in the database file.
        let mut copied = 0;
        let mut last_pass = Instant::now();
        let mut last_write = Instant::now();
        let mut truncated = true;
        loop {
            match wake.recv_timeout(CHECKPOINT_EVERY) {
                Ok(()) => {
                    truncated = false;
                    last_write = Instant::now();
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            let commits = self.progress.commits.load(Ordering::Relaxed);
            if commits - copied >= PASS_COMMITS && last_pass.elapsed() >= CHECKPOINT_EVERY {
                last_pass = Instant::now();
                copied = commits;
                self.pass("PASSIVE");
            } else if !truncated && last_write.elapsed() >= TRUNCATE_AFTER_IDLE {
                // Idle: copy what is left and empty the file. This fails at once (busy
                // timeout 0) if a write or an old reader is about, and the next idle
                // moment tries again.
                truncated = self.pass("TRUNCATE");
                if truncated {
                    copied = commits;
                }
            }
        }
    }

    /// One checkpoint; whether it completed.
    fn pass(&self, mode: &str) -> bool {
        let started = Instant::now();
        let result = wal_checkpoint(&self.conn, mode);
        match result {
            Ok((busy, frames, copied)) => {
                self.progress.frames.store(frames, Ordering::Relaxed);
                self.progress.fresh.store(true, Ordering::Release);
                tracing::debug!(
                    mode,
                    busy,
                    frames,
                    copied,
                    elapsed_us = started.elapsed().as_micros() as u64,
                    "WAL checkpoint"
                );
                busy == 0
            }
            Err(e) => {
                tracing::warn!(path = %self.path.display(), mode, error = %e, "WAL checkpoint failed");
                false
            }
        }
    }
}

/// Runs `PRAGMA wal_checkpoint(mode)`: SQLite's `(busy, WAL frames, frames copied)`.
pub(super) fn wal_checkpoint(conn: &Connection, mode: &str) -> rusqlite::Result<(i64, i64, i64)> {
    conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
    })
}

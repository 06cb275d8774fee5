//! The audit log backend (`--audit-log-path`): one JSON event per line, to a file or to
//! stdout (`-`). A file is rotated as upstream's lumberjack logger does it: once a write
//! would take it past `maxsize` megabytes (100 when 0) it is renamed to
//! `<name>-<UTC time>.<ext>` and a new file started; backups beyond `maxbackup` or older
//! than `maxage` days are removed (0: keep them). Lines are written by a thread of their
//! own so that a request never waits on the disk.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc;

/// Where the log goes and how it is rotated.
#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    /// The file; `-` is stdout.
    pub path: PathBuf,
    /// Days to keep rotated files (0: no limit).
    pub max_age_days: u64,
    /// Rotated files to keep (0: no limit).
    pub max_backups: usize,
    /// Megabytes before rotating (0: lumberjack's default, 100).
    pub max_size_mb: u64,
}

/// Sends lines to the writer thread.
#[derive(Debug, Clone)]
pub struct LogBackend {
    tx: mpsc::Sender<Vec<u8>>,
}

impl LogBackend {
    /// Opens the log (creating its directory and the file, mode 0600) and starts its
    /// writer.
    pub fn open(opts: LogOptions) -> std::io::Result<LogBackend> {
        let mut sink = Sink::open(opts)?;
        let (tx, rx) = mpsc::channel::<Vec<u8>>();
        std::thread::Builder::new()
            .name("audit-log".into())
            .spawn(move || {
                while let Ok(line) = rx.recv() {
                    if let Err(e) = sink.write(&line) {
                        tracing::warn!(error = %e, "cannot write the audit log");
                    }
                }
            })?;
        Ok(LogBackend { tx })
    }

    /// Queues one line (a newline is added).
    pub fn write(&self, mut line: Vec<u8>) {
        line.push(b'\n');
        let _ = self.tx.send(line);
    }
}

enum Sink {
    Stdout,
    File {
        opts: LogOptions,
        file: File,
        size: u64,
    },
}

fn open_file(path: &Path) -> std::io::Result<File> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut o = OpenOptions::new();
    o.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o.open(path)
}

impl Sink {
    fn open(opts: LogOptions) -> std::io::Result<Sink> {
        if opts.path.as_os_str() == "-" {
            return Ok(Sink::Stdout);
        }
        let file = open_file(&opts.path)?;
        let size = file.metadata()?.len();
        Ok(Sink::File { opts, file, size })
    }

    fn write(&mut self, line: &[u8]) -> std::io::Result<()> {
        match self {
            Sink::Stdout => {
                let mut out = std::io::stdout().lock();
                out.write_all(line)?;
                out.flush()
            }
            Sink::File { opts, file, size } => {
                let max = if opts.max_size_mb == 0 {
                    100
                } else {
                    opts.max_size_mb
                } << 20;
                if *size > 0 && *size + line.len() as u64 > max {
                    rotate(opts)?;
                    *file = open_file(&opts.path)?;
                    *size = 0;
                }
                file.write_all(line)?;
                *size += line.len() as u64;
                Ok(())
            }
        }
    }
}

/// The backup name lumberjack gives `path` at `now`: `<stem>-<2006-01-02T15-04-05.000>.<ext>`.
fn backup_name(path: &Path, now: jiff::Timestamp) -> PathBuf {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let ext = path
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    let t = now.strftime("%Y-%m-%dT%H-%M-%S").to_string();
    let ms = now.subsec_millisecond();
    path.with_file_name(format!("{stem}-{t}.{ms:03}{ext}"))
}

/// Renames the current file to its backup name and removes what the limits leave out.
fn rotate(opts: &LogOptions) -> std::io::Result<()> {
    let now = jiff::Timestamp::now();
    std::fs::rename(&opts.path, backup_name(&opts.path, now))?;
    let dir = match opts.path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(d) => d.to_path_buf(),
        None => PathBuf::from("."),
    };
    let stem = opts
        .path
        .file_stem()
        .map(|s| format!("{}-", s.to_string_lossy()))
        .unwrap_or_default();
    let current = opts.path.file_name().map(|n| n.to_os_string());
    // Backups sort by their timestamp: newest last.
    let mut backups: Vec<(PathBuf, std::time::SystemTime)> = std::fs::read_dir(&dir)?
        .filter_map(Result::ok)
        .filter(|e| {
            let n = e.file_name();
            Some(&n) != current.as_ref() && n.to_string_lossy().starts_with(&stem)
        })
        .filter_map(|e| Some((e.path(), e.metadata().ok()?.modified().ok()?)))
        .collect();
    backups.sort_by(|a, b| a.0.cmp(&b.0));
    let mut remove = Vec::new();
    if opts.max_backups > 0 && backups.len() > opts.max_backups {
        let extra = backups.len() - opts.max_backups;
        remove.extend(backups.drain(..extra).map(|b| b.0));
    }
    if opts.max_age_days > 0 {
        let cutoff = std::time::SystemTime::now()
            .checked_sub(std::time::Duration::from_secs(opts.max_age_days * 86_400));
        if let Some(cutoff) = cutoff {
            remove.extend(backups.iter().filter(|b| b.1 < cutoff).map(|b| b.0.clone()));
        }
    }
    for p in remove {
        let _ = std::fs::remove_file(p);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backups_are_named_as_lumberjack_names_them() {
        let t: jiff::Timestamp = "2026-12-06T18:04:05.123Z".parse().unwrap();
        assert_eq!(
            backup_name(Path::new("/var/log/audit.log"), t),
            PathBuf::from("/var/log/audit-2026-12-06T18-04-05.123.log")
        );
    }

    #[test]
    fn a_full_file_is_rotated_and_old_backups_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let opts = LogOptions {
            path: path.clone(),
            max_age_days: 0,
            max_backups: 1,
            max_size_mb: 1,
        };
        let mut sink = Sink::open(opts).unwrap();
        let line = vec![b'x'; 700 * 1024];
        for _ in 0..3 {
            sink.write(&line).unwrap();
            // Backup names have millisecond resolution.
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 700 * 1024);
    }
}

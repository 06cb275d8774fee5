//! `GET /containerLogs/{ns}/{pod}/{container}`: a container's log file, in the CRI log
//! format the runtime writes, read back as upstream's kubelet does (`follow`, `previous`,
//! `tailLines`, `sinceSeconds`, `sinceTime`, `timestamps`, `limitBytes`, `stream`).

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use jiff::Timestamp;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::sync::mpsc;

/// How often a followed log is polled for new lines.
const FOLLOW_POLL: Duration = Duration::from_millis(200);

/// Which of the container's streams to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogStream {
    /// Both (the default).
    All,
    /// Only stdout.
    Stdout,
    /// Only stderr.
    Stderr,
}

/// What a log request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogOptions {
    /// Keep the response open and send lines as they are written.
    pub follow: bool,
    /// The previous instance of the container.
    pub previous: bool,
    /// Prefix each line with its timestamp.
    pub timestamps: bool,
    /// Only this many lines from the end.
    pub tail_lines: Option<u64>,
    /// Only lines written at or after this.
    pub since: Option<Timestamp>,
    /// Stop after this many bytes.
    pub limit_bytes: Option<u64>,
    /// Which streams.
    pub stream: LogStream,
}

impl LogOptions {
    /// Reads the query parameters; an invalid one is a message for a 400.
    pub fn from_query(query: &[(String, String)], now: Timestamp) -> Result<LogOptions, String> {
        let get = |name: &str| {
            query
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let flag = |name: &str| get(name).is_some_and(|v| v == "true" || v == "1");
        let number = |name: &str| -> Result<Option<i64>, String> {
            match get(name) {
                None | Some("") => Ok(None),
                Some(v) => v
                    .parse::<i64>()
                    .map(Some)
                    .map_err(|_| format!("invalid {name}: {v:?}")),
            }
        };
        let tail_lines = number("tailLines")?.map(|n| n.max(0) as u64);
        let limit_bytes = match number("limitBytes")? {
            Some(n) if n < 1 => return Err("limitBytes: must be greater than 0".into()),
            n => n.map(|n| n as u64),
        };
        let since = match (number("sinceSeconds")?, get("sinceTime")) {
            (Some(_), Some(_)) => {
                return Err("at most one of sinceTime or sinceSeconds may be specified".into());
            }
            (Some(s), None) if s < 1 => {
                return Err("sinceSeconds: must be greater than 0".into());
            }
            (Some(s), None) => now.checked_sub(jiff::SignedDuration::from_secs(s)).ok(),
            (None, Some(t)) => Some(
                t.parse::<Timestamp>()
                    .map_err(|_| format!("invalid sinceTime: {t:?}"))?,
            ),
            (None, None) => None,
        };
        let stream = match get("stream") {
            None | Some("") | Some("All") => LogStream::All,
            Some("Stdout") => LogStream::Stdout,
            Some("Stderr") => LogStream::Stderr,
            Some(other) => return Err(format!("invalid stream: {other:?}")),
        };
        Ok(LogOptions {
            follow: flag("follow"),
            previous: flag("previous"),
            timestamps: flag("timestamps"),
            tail_lines,
            since,
            limit_bytes,
            stream,
        })
    }
}

/// One line of a CRI log file: `<RFC3339Nano> <stdout|stderr> <P|F> <content>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CriLine<'a> {
    /// The timestamp as written.
    pub timestamp_text: &'a str,
    /// The timestamp, when it parses.
    pub timestamp: Option<Timestamp>,
    /// `stdout` or `stderr`.
    pub stream: &'a str,
    /// A partial line (`P`), continued by the next one.
    pub partial: bool,
    /// The content, without the newline.
    pub content: &'a [u8],
}

/// Parses one line (without its `\n`); `None` when it is not in the CRI format.
pub fn parse_line(line: &[u8]) -> Option<CriLine<'_>> {
    let mut parts = line.splitn(4, |b| *b == b' ');
    let ts = std::str::from_utf8(parts.next()?).ok()?;
    let stream = std::str::from_utf8(parts.next()?).ok()?;
    if stream != "stdout" && stream != "stderr" {
        return None;
    }
    let tag = parts.next()?;
    let content = parts.next().unwrap_or(&[]);
    Some(CriLine {
        timestamp_text: ts,
        timestamp: ts.parse().ok(),
        stream,
        partial: tag.first() == Some(&b'P'),
        content,
    })
}

/// Renders one line as the client sees it; `None` when the options filter it out.
pub fn render(line: &CriLine<'_>, opts: &LogOptions) -> Option<Vec<u8>> {
    match (opts.stream, line.stream) {
        (LogStream::Stdout, "stderr") | (LogStream::Stderr, "stdout") => return None,
        _ => {}
    }
    if let (Some(since), Some(ts)) = (opts.since, line.timestamp)
        && ts < since
    {
        return None;
    }
    let mut out = Vec::with_capacity(line.content.len() + 40);
    if opts.timestamps {
        out.extend_from_slice(line.timestamp_text.as_bytes());
        out.push(b' ');
    }
    out.extend_from_slice(line.content);
    if !line.partial {
        out.push(b'\n');
    }
    Some(out)
}

/// Sends what the client may still receive; false once the limit is reached or the
/// client is gone.
struct Sink {
    tx: mpsc::Sender<Bytes>,
    left: Option<u64>,
}

impl Sink {
    async fn send(&mut self, mut data: Vec<u8>) -> bool {
        if let Some(left) = self.left.as_mut() {
            if *left == 0 {
                return false;
            }
            if data.len() as u64 > *left {
                data.truncate(*left as usize);
            }
            *left -= data.len() as u64;
        }
        if self.tx.send(Bytes::from(data)).await.is_err() {
            return false;
        }
        self.left != Some(0)
    }
}

/// Streams the log at `path` to `tx` per `opts`. With `follow`, keeps reading new lines
/// until `running()` says the container stopped and the file is drained.
pub async fn stream<F, Fut>(path: PathBuf, opts: LogOptions, tx: mpsc::Sender<Bytes>, running: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = bool>,
{
    let mut sink = Sink {
        tx,
        left: opts.limit_bytes,
    };
    let mut file = match tokio::fs::File::open(&path).await {
        Ok(f) => f,
        Err(e) => {
            tracing::debug!(path = %path.display(), error = %e, "no log file");
            if !opts.follow {
                return;
            }
            // The runtime creates the file when the container starts writing.
            loop {
                if !running().await {
                    return;
                }
                tokio::time::sleep(FOLLOW_POLL).await;
                if let Ok(f) = tokio::fs::File::open(&path).await {
                    break f;
                }
                if sink.tx.is_closed() {
                    return;
                }
            }
        }
    };
    let mut whole = Vec::new();
    if file.read_to_end(&mut whole).await.is_err() {
        return;
    }
    // Only complete lines now; a line still being written is read with the next poll.
    let complete = whole.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    let mut pending = whole.split_off(complete);
    let mut lines: Vec<&[u8]> = whole
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    if let Some(n) = opts.tail_lines {
        let n = n as usize;
        if lines.len() > n {
            lines.drain(..lines.len() - n);
        }
    }
    for line in lines {
        if let Some(parsed) = parse_line(line)
            && let Some(out) = render(&parsed, &opts)
            && !sink.send(out).await
        {
            return;
        }
    }
    if !opts.follow {
        return;
    }
    let mut offset = whole.len() as u64 + pending.len() as u64;
    let mut buf = vec![0u8; 64 * 1024];
    let mut stopped_checks = 0u32;
    loop {
        let n = match file.read(&mut buf).await {
            Ok(n) => n,
            Err(_) => return,
        };
        if n == 0 {
            if sink.tx.is_closed() {
                return;
            }
            // Truncated or rotated: start over from the beginning of the new contents.
            if let Ok(meta) = tokio::fs::metadata(&path).await
                && meta.len() < offset
                && let Ok(f) = tokio::fs::File::open(&path).await
            {
                file = f;
                offset = 0;
                pending.clear();
                continue;
            }
            stopped_checks += 1;
            // Asking the runtime is costlier than a read; do it every fifth idle poll.
            if stopped_checks.is_multiple_of(5) && !running().await {
                // One last read for lines written just before it stopped.
                let mut rest = Vec::new();
                let _ = file.seek(std::io::SeekFrom::Start(offset)).await;
                let _ = file.read_to_end(&mut rest).await;
                pending.extend_from_slice(&rest);
                if !pending.is_empty() && !pending.ends_with(b"\n") {
                    pending.push(b'\n');
                }
                for line in pending.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                    if let Some(parsed) = parse_line(line)
                        && let Some(out) = render(&parsed, &opts)
                        && !sink.send(out).await
                    {
                        return;
                    }
                }
                return;
            }
            tokio::time::sleep(FOLLOW_POLL).await;
            continue;
        }
        offset += n as u64;
        pending.extend_from_slice(&buf[..n]);
        let Some(last) = pending.iter().rposition(|b| *b == b'\n') else {
            continue;
        };
        let rest = pending.split_off(last + 1);
        for line in pending.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            if let Some(parsed) = parse_line(line)
                && let Some(out) = render(&parsed, &opts)
                && !sink.send(out).await
            {
                return;
            }
        }
        pending = rest;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn now() -> Timestamp {
        "2026-01-01T00:00:10Z".parse().expect("time")
    }

    #[test]
    fn parses_cri_lines() {
        let l = parse_line(b"2026-01-01T00:00:00.123456789Z stdout F hello world").expect("line");
        assert_eq!(l.stream, "stdout");
        assert!(!l.partial);
        assert_eq!(l.content, b"hello world");
        assert!(l.timestamp.is_some());
        let p = parse_line(b"2026-01-01T00:00:00Z stderr P part").expect("line");
        assert!(p.partial);
        assert_eq!(parse_line(b"garbage"), None);
        let empty = parse_line(b"2026-01-01T00:00:00Z stdout F").expect("line");
        assert_eq!(empty.content, b"");
    }

    #[test]
    fn renders_with_options() {
        let l = parse_line(b"2026-01-01T00:00:05Z stderr F oops").expect("line");
        let mut o = LogOptions::from_query(&[], now()).expect("opts");
        assert_eq!(render(&l, &o), Some(b"oops\n".to_vec()));
        o.timestamps = true;
        assert_eq!(
            render(&l, &o),
            Some(b"2026-01-01T00:00:05Z oops\n".to_vec())
        );
        o.stream = LogStream::Stdout;
        assert_eq!(render(&l, &o), None);
        let o = LogOptions::from_query(&q(&[("sinceSeconds", "3")]), now()).expect("opts");
        assert_eq!(render(&l, &o), None);
        let o = LogOptions::from_query(&q(&[("sinceTime", "2026-01-01T00:00:05Z")]), now())
            .expect("opts");
        assert_eq!(render(&l, &o), Some(b"oops\n".to_vec()));
    }

    #[test]
    fn rejects_bad_options() {
        assert!(LogOptions::from_query(&q(&[("tailLines", "x")]), now()).is_err());
        assert!(LogOptions::from_query(&q(&[("limitBytes", "0")]), now()).is_err());
        assert!(
            LogOptions::from_query(&q(&[("sinceSeconds", "1"), ("sinceTime", "x")]), now())
                .is_err()
        );
        let o = LogOptions::from_query(
            &q(&[("follow", "true"), ("tailLines", "2"), ("previous", "true")]),
            now(),
        )
        .expect("opts");
        assert!(o.follow && o.previous);
        assert_eq!(o.tail_lines, Some(2));
    }

    async fn collect(path: PathBuf, opts: LogOptions) -> String {
        let (tx, mut rx) = mpsc::channel(16);
        let task = tokio::spawn(stream(path, opts, tx, || async { false }));
        let mut out = Vec::new();
        while let Some(b) = rx.recv().await {
            out.extend_from_slice(&b);
        }
        let _ = task.await;
        String::from_utf8(out).expect("utf8")
    }

    #[tokio::test]
    async fn tail_limit_and_partial_lines() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("0.log");
        std::fs::write(
            &path,
            "2026-01-01T00:00:01Z stdout F one\n\
             2026-01-01T00:00:02Z stdout P tw\n\
             2026-01-01T00:00:02Z stdout F o\n\
             2026-01-01T00:00:03Z stderr F three\n",
        )
        .expect("write");
        let all = LogOptions::from_query(&[], now()).expect("opts");
        assert_eq!(
            collect(path.clone(), all.clone()).await,
            "one\ntwo\nthree\n"
        );
        let tail = LogOptions::from_query(&q(&[("tailLines", "1")]), now()).expect("opts");
        assert_eq!(collect(path.clone(), tail).await, "three\n");
        let limit = LogOptions::from_query(&q(&[("limitBytes", "6")]), now()).expect("opts");
        assert_eq!(collect(path.clone(), limit).await, "one\ntw");
    }

    #[tokio::test]
    async fn follow_sends_appended_lines_until_the_container_stops() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("0.log");
        std::fs::write(&path, "2026-01-01T00:00:01Z stdout F one\n").expect("write");
        let running = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let r = running.clone();
        let opts = LogOptions::from_query(&q(&[("follow", "true")]), now()).expect("opts");
        let (tx, mut rx) = mpsc::channel(16);
        let task = tokio::spawn(stream(path.clone(), opts, tx, move || {
            let r = r.clone();
            async move { r.load(std::sync::atomic::Ordering::SeqCst) }
        }));
        assert_eq!(rx.recv().await.as_deref(), Some(&b"one\n"[..]));
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .expect("open");
        f.write_all(b"2026-01-01T00:00:02Z stdout F two\n")
            .expect("append");
        assert_eq!(rx.recv().await.as_deref(), Some(&b"two\n"[..]));
        running.store(false, std::sync::atomic::Ordering::SeqCst);
        assert_eq!(rx.recv().await, None);
        task.await.expect("task");
    }
}

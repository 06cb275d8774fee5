//! Container and exec stdio over FIFOs the shim writes into: output copied into the CRI log
//! file (`<RFC3339Nano> <stream> <P|F> <line>`) and fanned out to attach sessions; stdin kept
//! open for attach. FIFOs live under the state dir, so a restarted k1s opens them again for
//! containers that still run (the shim holds its ends open and blocks while nobody reads).

use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use containerd_client::services::v1 as pb;
use nix::sys::stat::Mode;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::unix::pipe;
use tokio::sync::{broadcast, mpsc, watch};

use super::{
    ContainerdRuntime, LABEL_LOG_PATH, LABEL_STDIN, LABEL_STDIN_ONCE, LABEL_TTY, is_not_found,
    new_id, rt_err, status_err,
};
use crate::runtime::{RuntimeError, RuntimeResult, StreamRequest, StreamSession, TerminalSize};

/// The longest log line written whole; longer ones are split into `P` parts (CRI's default).
const MAX_LINE: usize = 16 * 1024;

pub(crate) fn container_dir(rt: &ContainerdRuntime, id: &str) -> PathBuf {
    rt.inner.state_dir.join("containers").join(id)
}

fn make_fifo(path: &Path) -> RuntimeResult<()> {
    match nix::unistd::mkfifo(path, Mode::from_bits_truncate(0o600)) {
        Ok(()) | Err(nix::errno::Errno::EEXIST) => Ok(()),
        Err(e) => Err(rt_err(format!("mkfifo {}: {e}", path.display()))),
    }
}

/// Opens a FIFO's read end, waiting (off the runtime's threads) until a writer has it open.
async fn open_reader(path: PathBuf) -> Option<pipe::Receiver> {
    let file =
        tokio::task::spawn_blocking(move || std::fs::OpenOptions::new().read(true).open(&path))
            .await
            .ok()?
            .ok()?;
    pipe::Receiver::from_file(file).ok()
}

/// Releases a reader blocked in [`open_reader`] when no writer will come.
fn unblock_reader(path: &Path) {
    let _ = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path);
}

/// One log line in the CRI format.
fn log_line(stream: &str, partial: bool, line: &[u8]) -> Vec<u8> {
    let now = jiff::Timestamp::now();
    let mut out = format!(
        "{}.{:09}Z {stream} {} ",
        now.strftime("%Y-%m-%dT%H:%M:%S"),
        now.subsec_nanosecond(),
        if partial { "P" } else { "F" }
    )
    .into_bytes();
    out.extend_from_slice(line);
    out.push(b'\n');
    out
}

/// Splits output into CRI log lines, keeping an unfinished line for the next chunk.
#[derive(Default)]
pub(crate) struct LineSplitter {
    pending: Vec<u8>,
}

impl LineSplitter {
    /// Feeds bytes; answers the finished lines `(partial, line)`.
    pub(crate) fn feed(&mut self, data: &[u8]) -> Vec<(bool, Vec<u8>)> {
        self.pending.extend_from_slice(data);
        let mut out = Vec::new();
        loop {
            if let Some(pos) = self.pending.iter().position(|b| *b == b'\n') {
                let mut line: Vec<u8> = self.pending.drain(..=pos).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                out.push((false, line));
            } else if self.pending.len() >= MAX_LINE {
                out.push((true, self.pending.drain(..MAX_LINE).collect()));
            } else {
                break;
            }
        }
        out
    }

    /// What is left at the end of the stream, as a full line.
    pub(crate) fn finish(&mut self) -> Option<(bool, Vec<u8>)> {
        (!self.pending.is_empty()).then(|| (false, std::mem::take(&mut self.pending)))
    }
}

/// The FIFO paths a task is created with.
#[derive(Debug, Clone)]
pub(crate) struct IoPaths {
    pub(crate) stdin: String,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
    pub(crate) terminal: bool,
}

/// A running container's output copiers, attach fan-out and stdin.
pub(crate) struct ContainerIo {
    id: String,
    paths: IoPaths,
    stdin_once: bool,
    stdout: broadcast::Sender<Bytes>,
    stderr: broadcast::Sender<Bytes>,
    stdin: tokio::sync::Mutex<Option<pipe::Sender>>,
    exit: watch::Sender<Option<i32>>,
    runtime: ContainerdRuntime,
}

impl ContainerIo {
    /// Makes (or, after a restart, finds) the container's FIFOs and starts copying its output
    /// into its log file.
    pub(crate) fn open(
        rt: &ContainerdRuntime,
        record: &pb::Container,
        _reattach: bool,
    ) -> Arc<ContainerIo> {
        let dir = container_dir(rt, &record.id);
        let terminal = record.labels.get(LABEL_TTY).is_some_and(|v| v == "true");
        let with_stdin = record.labels.get(LABEL_STDIN).is_some_and(|v| v == "true");
        let path = |name: &str| dir.join(name).to_string_lossy().into_owned();
        let paths = IoPaths {
            stdin: if with_stdin {
                path("stdin")
            } else {
                String::new()
            },
            stdout: path("stdout"),
            stderr: if terminal {
                String::new()
            } else {
                path("stderr")
            },
            terminal,
        };
        let made = std::fs::create_dir_all(&dir)
            .map_err(|e| rt_err(format!("{}: {e}", dir.display())))
            .and_then(|()| {
                [&paths.stdin, &paths.stdout, &paths.stderr]
                    .into_iter()
                    .filter(|p| !p.is_empty())
                    .try_for_each(|p| make_fifo(Path::new(p)))
            });
        if let Err(e) = made {
            tracing::warn!(container = %record.id, "cannot make the container's FIFOs: {e}");
        }
        let stdin = if with_stdin {
            pipe::OpenOptions::new()
                .read_write(true)
                .open_sender(&paths.stdin)
                .ok()
        } else {
            None
        };
        let io = Arc::new(ContainerIo {
            id: record.id.clone(),
            paths: paths.clone(),
            stdin_once: record
                .labels
                .get(LABEL_STDIN_ONCE)
                .is_some_and(|v| v == "true"),
            stdout: broadcast::channel(256).0,
            stderr: broadcast::channel(256).0,
            stdin: tokio::sync::Mutex::new(stdin),
            exit: watch::channel(None).0,
            runtime: rt.clone(),
        });
        let log_path = record.labels.get(LABEL_LOG_PATH).map(PathBuf::from);
        let (lines_tx, lines_rx) = mpsc::channel::<(&'static str, bool, Vec<u8>)>(256);
        for (name, path, fan) in [
            ("stdout", paths.stdout.clone(), io.stdout.clone()),
            ("stderr", paths.stderr.clone(), io.stderr.clone()),
        ] {
            if path.is_empty() {
                continue;
            }
            let lines = lines_tx.clone();
            let handle = tokio::spawn(async move {
                let Some(mut reader) = open_reader(PathBuf::from(&path)).await else {
                    return;
                };
                let mut splitter = LineSplitter::default();
                let mut buf = vec![0u8; 32 * 1024];
                loop {
                    match reader.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            let _ = fan.send(Bytes::copy_from_slice(&buf[..n]));
                            for (partial, line) in splitter.feed(&buf[..n]) {
                                let _ = lines.send((name, partial, line)).await;
                            }
                        }
                    }
                }
                if let Some((partial, line)) = splitter.finish() {
                    let _ = lines.send((name, partial, line)).await;
                }
                // An empty chunk tells attach sessions the stream ended.
                let _ = fan.send(Bytes::new());
            });
            rt.track(handle);
        }
        drop(lines_tx);
        tokio::spawn(write_log(record.id.clone(), log_path, lines_rx));
        io
    }

    pub(crate) fn paths(&self) -> IoPaths {
        self.paths.clone()
    }

    /// Ends copiers still waiting for a writer (the task never started).
    pub(crate) fn abort(&self) {
        for p in [&self.paths.stdout, &self.paths.stderr] {
            if !p.is_empty() {
                unblock_reader(Path::new(p));
            }
        }
    }

    /// The container's process ended with `code`.
    pub(crate) async fn exited(&self, code: i32) {
        let _ = self.exit.send(Some(code));
        self.stdin.lock().await.take();
    }
}

async fn write_log(
    id: String,
    log_path: Option<PathBuf>,
    mut lines: mpsc::Receiver<(&'static str, bool, Vec<u8>)>,
) {
    let Some(path) = log_path.filter(|p| !p.as_os_str().is_empty()) else {
        while lines.recv().await.is_some() {}
        return;
    };
    if let Some(parent) = path.parent() {
        let _ = tokio::fs::create_dir_all(parent).await;
    }
    let mut file = match tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .await
    {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!(container = %id, log = %path.display(), "cannot open the log file: {e}");
            while lines.recv().await.is_some() {}
            return;
        }
    };
    while let Some((stream, partial, line)) = lines.recv().await {
        if let Err(e) = file.write_all(&log_line(stream, partial, &line)).await {
            tracing::warn!(container = %id, log = %path.display(), "cannot write the log: {e}");
        }
    }
    let _ = file.flush().await;
}

/// A reader fed from an output fan-out until the stream's end marker.
fn fan_reader(
    mut rx: broadcast::Receiver<Bytes>,
) -> std::pin::Pin<Box<dyn tokio::io::AsyncRead + Send>> {
    let (mut writer, reader) = tokio::io::duplex(64 * 1024);
    tokio::spawn(async move {
        loop {
            match rx.recv().await {
                Ok(chunk) if chunk.is_empty() => break,
                Ok(chunk) => {
                    if writer.write_all(&chunk).await.is_err() {
                        break;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => break,
            }
        }
    });
    Box::pin(reader)
}

fn resizer(
    rt: &ContainerdRuntime,
    container_id: &str,
    exec_id: &str,
) -> mpsc::Sender<TerminalSize> {
    let (tx, mut rx) = mpsc::channel::<TerminalSize>(8);
    let rt = rt.clone();
    let container_id = container_id.to_string();
    let exec_id = exec_id.to_string();
    tokio::spawn(async move {
        while let Some(size) = rx.recv().await {
            let _ = rt
                .tasks()
                .resize_pty(rt.req(pb::ResizePtyRequest {
                    container_id: container_id.clone(),
                    exec_id: exec_id.clone(),
                    width: u32::from(size.width),
                    height: u32::from(size.height),
                }))
                .await;
        }
    });
    tx
}

pub(crate) async fn attach(
    rt: &ContainerdRuntime,
    container_id: &str,
    request: &StreamRequest,
) -> RuntimeResult<StreamSession> {
    let io = rt
        .inner
        .ios
        .lock()
        .map_err(rt_err)?
        .get(container_id)
        .cloned()
        .ok_or_else(|| RuntimeError::Runtime(format!("container {container_id} is not running")))?;
    if io.exit.borrow().is_some() {
        return Err(RuntimeError::Runtime(format!(
            "container {container_id} is not running"
        )));
    }
    let stdout = request.stdout.then(|| fan_reader(io.stdout.subscribe()));
    let stderr = (request.stderr && !io.paths.terminal).then(|| fan_reader(io.stderr.subscribe()));
    let stdin: Option<std::pin::Pin<Box<dyn tokio::io::AsyncWrite + Send>>> =
        if request.stdin && !io.paths.stdin.is_empty() {
            let (writer, mut reader) = tokio::io::duplex(64 * 1024);
            let io = io.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 32 * 1024];
                loop {
                    match reader.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            let mut guard = io.stdin.lock().await;
                            let Some(sender) = guard.as_mut() else { break };
                            if sender.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                    }
                }
                if io.stdin_once {
                    // The first attach's end closes the container's stdin.
                    io.stdin.lock().await.take();
                    let _ = io
                        .runtime
                        .tasks()
                        .close_io(io.runtime.req(pb::CloseIoRequest {
                            container_id: io.id.clone(),
                            exec_id: String::new(),
                            stdin: true,
                        }))
                        .await;
                }
            });
            Some(Box::pin(writer))
        } else {
            None
        };
    let resize = io.paths.terminal.then(|| resizer(rt, container_id, ""));
    let mut exit = io.exit.subscribe();
    Ok(StreamSession {
        stdin,
        stdout,
        stderr,
        resize,
        exit: Box::pin(async move {
            loop {
                if let Some(code) = *exit.borrow_and_update() {
                    return Ok(code);
                }
                if exit.changed().await.is_err() {
                    return Err(RuntimeError::Runtime("the container's output ended".into()));
                }
            }
        }),
    })
}

pub(crate) async fn exec(
    rt: &ContainerdRuntime,
    container_id: &str,
    request: &StreamRequest,
) -> RuntimeResult<StreamSession> {
    if request.command.is_empty() {
        return Err(RuntimeError::Runtime("exec: no command given".into()));
    }
    let record = rt.record(container_id).await?;
    match rt.task(container_id).await? {
        Some(t) if t.status() == containerd_client::types::v1::Status::Running => {}
        _ => {
            return Err(RuntimeError::Runtime(format!(
                "container {container_id} is not running"
            )));
        }
    }
    let spec = record
        .spec
        .as_ref()
        .map(|s| s.value.clone())
        .unwrap_or_default();
    let process = super::spec::exec_process(&spec, &request.command, request.tty)?;
    let exec_id = new_id()[..16].to_string();
    let dir = rt.inner.state_dir.join("exec").join(&exec_id);
    std::fs::create_dir_all(&dir).map_err(|e| rt_err(format!("{}: {e}", dir.display())))?;
    let fifo = |name: &str, wanted: bool| -> RuntimeResult<String> {
        if !wanted {
            return Ok(String::new());
        }
        let p = dir.join(name);
        make_fifo(&p)?;
        Ok(p.to_string_lossy().into_owned())
    };
    let stdin_path = fifo("stdin", request.stdin)?;
    let stdout_path = fifo("stdout", request.stdout)?;
    let stderr_path = fifo("stderr", request.stderr && !request.tty)?;
    let stdin_sender = if stdin_path.is_empty() {
        None
    } else {
        Some(
            pipe::OpenOptions::new()
                .read_write(true)
                .open_sender(&stdin_path)
                .map_err(|e| rt_err(format!("{stdin_path}: {e}")))?,
        )
    };
    let pipe_out = |path: &str| -> Option<std::pin::Pin<Box<dyn tokio::io::AsyncRead + Send>>> {
        if path.is_empty() {
            return None;
        }
        let (mut writer, reader) = tokio::io::duplex(64 * 1024);
        let path = PathBuf::from(path);
        tokio::spawn(async move {
            if let Some(mut r) = open_reader(path).await {
                let _ = tokio::io::copy(&mut r, &mut writer).await;
            }
        });
        Some(Box::pin(reader))
    };
    let stdout = pipe_out(&stdout_path);
    let stderr = pipe_out(&stderr_path);
    let created = rt
        .tasks()
        .exec(rt.req(pb::ExecProcessRequest {
            container_id: container_id.to_string(),
            stdin: stdin_path.clone(),
            stdout: stdout_path.clone(),
            stderr: stderr_path.clone(),
            terminal: request.tty,
            spec: Some(prost_types::Any {
                type_url: "types.containerd.io/opencontainers/runtime-spec/1/Process".into(),
                value: process,
            }),
            exec_id: exec_id.clone(),
        }))
        .await;
    let cleanup = |dir: &Path| {
        for p in [&stdout_path, &stderr_path] {
            if !p.is_empty() {
                unblock_reader(Path::new(p));
            }
        }
        let _ = std::fs::remove_dir_all(dir);
    };
    if let Err(e) = created {
        cleanup(&dir);
        return Err(status_err("exec", e));
    }
    // Wait is asked before start so a quick process's exit is not missed.
    let (code_tx, code_rx) = tokio::sync::oneshot::channel::<RuntimeResult<i32>>();
    let waiter = {
        let rt = rt.clone();
        let container_id = container_id.to_string();
        let exec_id = exec_id.clone();
        let dir = dir.clone();
        tokio::spawn(async move {
            let waited = rt
                .tasks()
                .wait(rt.req(pb::WaitRequest {
                    container_id: container_id.clone(),
                    exec_id: exec_id.clone(),
                }))
                .await;
            let result = match waited {
                Ok(r) => Ok(i32::try_from(r.into_inner().exit_status).unwrap_or(255)),
                Err(e) => Err(status_err("wait for exec", e)),
            };
            match rt
                .tasks()
                .delete_process(rt.req(pb::DeleteProcessRequest {
                    container_id,
                    exec_id,
                }))
                .await
            {
                Ok(_) => {}
                Err(e) if is_not_found(&e) => {}
                Err(e) => tracing::debug!("cannot delete the exec process: {e}"),
            }
            let _ = tokio::fs::remove_dir_all(&dir).await;
            let _ = code_tx.send(result);
        })
    };
    if let Err(e) = rt
        .tasks()
        .start(rt.req(pb::StartRequest {
            container_id: container_id.to_string(),
            exec_id: exec_id.clone(),
        }))
        .await
    {
        waiter.abort();
        let _ = rt
            .tasks()
            .delete_process(rt.req(pb::DeleteProcessRequest {
                container_id: container_id.to_string(),
                exec_id: exec_id.clone(),
            }))
            .await;
        cleanup(&dir);
        return Err(status_err("start exec", e));
    }
    // The shim keeps the stdin FIFO open itself: the process sees EOF only after CloseIO.
    let stdin = stdin_sender.map(|mut sender| {
        let (writer, mut reader) = tokio::io::duplex(64 * 1024);
        let rt = rt.clone();
        let container_id = container_id.to_string();
        let exec_id = exec_id.clone();
        tokio::spawn(async move {
            let _ = tokio::io::copy(&mut reader, &mut sender).await;
            let _ = sender.flush().await;
            drop(sender);
            let _ = rt
                .tasks()
                .close_io(rt.req(pb::CloseIoRequest {
                    container_id,
                    exec_id,
                    stdin: true,
                }))
                .await;
        });
        Box::pin(writer) as std::pin::Pin<Box<dyn tokio::io::AsyncWrite + Send>>
    });
    Ok(StreamSession {
        stdin,
        stdout,
        stderr,
        resize: request.tty.then(|| resizer(rt, container_id, &exec_id)),
        exit: Box::pin(async move {
            code_rx
                .await
                .map_err(|_| RuntimeError::Runtime("the exec ended without a status".into()))?
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_full_and_partial() {
        let mut s = LineSplitter::default();
        assert_eq!(s.feed(b"hello\nwor"), vec![(false, b"hello".to_vec())]);
        assert_eq!(s.feed(b"ld\r\n"), vec![(false, b"world".to_vec())]);
        let long = vec![b'x'; MAX_LINE + 5];
        let out = s.feed(&long);
        assert_eq!(out.len(), 1);
        assert!(out[0].0);
        assert_eq!(s.finish(), Some((false, vec![b'x'; 5])));
        assert_eq!(s.finish(), None);
    }

    #[test]
    fn log_lines_have_the_cri_shape() {
        let line = String::from_utf8(log_line("stdout", false, b"hi")).unwrap_or_default();
        let parts: Vec<&str> = line.splitn(4, ' ').collect();
        assert_eq!(parts.len(), 4, "{line}");
        assert_eq!(
            parts[0].len(),
            "2016-10-06T00:17:09.669794202Z".len(),
            "{line}"
        );
        assert!(parts[0].ends_with('Z'));
        assert_eq!(&parts[1..], ["stdout", "F", "hi\n"]);
    }
}

//! Drives one `chalktalk-media worker` process: writes the job to its
//! stdin, yields its events line by line, and turns its exit into a result.
//! The child is killed when this handle is dropped (cancel, dead-man timer).

use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use chalktalk_actors::encoder::JobError;
use chalktalk_media::worker::{EXIT_MEDIA_ERROR, WorkerEvent, WorkerJob};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

/// A running worker.
pub struct WorkerProcess {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
    stderr_tail: Arc<Mutex<String>>,
    media_error: Option<JobError>,
}

impl WorkerProcess {
    /// Starts `exe worker` (the `chalktalk-media` binary) on `job`.
    pub async fn start(exe: &Path, job: &WorkerJob) -> Result<WorkerProcess, JobError> {
        let unavailable = |e: std::io::Error| {
            JobError::new(
                "worker_unavailable",
                format!("cannot start the transcode worker {}: {e}", exe.display()),
                true,
            )
        };
        let mut child = Command::new(exe)
            .arg("worker")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(unavailable)?;
        let line = serde_json::to_string(job)
            .map_err(|e| JobError::new("internal", e.to_string(), false))?;
        let mut stdin = child
            .stdin
            .take()
            .ok_or_else(|| JobError::new("worker_unavailable", "no stdin", true))?;
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .await
            .map_err(unavailable)?;
        drop(stdin);
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| JobError::new("worker_unavailable", "no stdout", true))?;
        let stderr_tail = Arc::new(Mutex::new(String::new()));
        if let Some(mut err) = child.stderr.take() {
            let tail = stderr_tail.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                while let Ok(n) = err.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    let mut t = tail.lock().unwrap_or_else(|e| e.into_inner());
                    t.push_str(&String::from_utf8_lossy(&buf[..n]));
                    if t.len() > 2048 {
                        let cut = t.len() - 2048;
                        let cut = (cut..t.len())
                            .find(|&i| t.is_char_boundary(i))
                            .unwrap_or(t.len());
                        t.drain(..cut);
                    }
                }
            });
        }
        Ok(WorkerProcess {
            child,
            lines: BufReader::new(stdout).lines(),
            stderr_tail,
            media_error: None,
        })
    }

    /// The process id (tests kill it to prove crashes are survived).
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// The next event; `None` once the worker closed its stdout. A media
    /// `error` event is kept for [`WorkerProcess::finish`].
    pub async fn next(&mut self) -> Option<WorkerEvent> {
        loop {
            let line = self.lines.next_line().await.ok().flatten()?;
            match serde_json::from_str::<WorkerEvent>(&line) {
                Ok(WorkerEvent::Error { code, message }) => {
                    self.media_error = Some(JobError::new(
                        code.as_str(),
                        message.clone(),
                        code.retryable(),
                    ));
                    return Some(WorkerEvent::Error { code, message });
                }
                Ok(ev) => return Some(ev),
                Err(_) => {
                    tracing::warn!(line = %line.chars().take(200).collect::<String>(), "transcode worker wrote a line that is not an event")
                }
            }
        }
    }

    /// Waits for the exit: `Ok` on success, the media error the worker
    /// reported, or `worker_crashed` (retryable) for anything else.
    pub async fn finish(mut self) -> Result<(), JobError> {
        let status = self
            .child
            .wait()
            .await
            .map_err(|e| JobError::new("worker_crashed", e.to_string(), true))?;
        if status.success() {
            return Ok(());
        }
        if let Some(e) = self.media_error.take() {
            return Err(e);
        }
        let tail = self
            .stderr_tail
            .lock()
            .map(|t| t.trim().to_string())
            .unwrap_or_default();
        let how = match status.code() {
            Some(EXIT_MEDIA_ERROR) => "exited with a media error but said nothing".to_string(),
            Some(c) => format!("exited with status {c}"),
            None => {
                use std::os::unix::process::ExitStatusExt;
                format!("was killed by signal {}", status.signal().unwrap_or(0))
            }
        };
        let detail = if tail.is_empty() {
            String::new()
        } else {
            format!(": {}", tail.lines().last().unwrap_or(""))
        };
        Err(JobError::new(
            "worker_crashed",
            format!("the transcode worker {how}{detail}"),
            true,
        ))
    }
}

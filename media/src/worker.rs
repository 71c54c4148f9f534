//! The line protocol of `chalktalk transcode-worker`: the server writes one
//! JSON [`WorkerJob`] to the worker's stdin and reads one JSON
//! [`WorkerEvent`] per line from its stdout. Exit code 0 after `done`, 3
//! after a media `error`; anything else (a signal, a panic) is a crash the
//! server retries. Decoding untrusted files happens only in this process.

use std::path::PathBuf;

use chalktalk_protocol::MediaInfo;
use serde::{Deserialize, Serialize};

use crate::error::MediaErrorCode;
use crate::ladder::LadderOptions;
use crate::report::{Limits, Options, ProbeReport, Timings};
#[cfg(feature = "ffmpeg")]
use crate::{error::MediaError, probe::probe, report::Event, transcode::transcode};
#[cfg(feature = "ffmpeg")]
use chalktalk_protocol::MediaKind;
#[cfg(feature = "ffmpeg")]
use std::io::{BufRead, Write};

/// Exit code after a media error (the file is bad: do not retry).
pub const EXIT_MEDIA_ERROR: i32 = 3;

/// What the worker should do.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkerOp {
    /// Validate a video only.
    Probe,
    /// Validate a voice-over only.
    ProbeVoiceOver,
    /// Validate then transcode a video.
    Video,
    /// Validate then normalise a voice-over.
    VoiceOver,
}

/// Encoder knobs the server may set.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkerSettings {
    pub preset: String,
    pub crf: u8,
    pub allow_copy: bool,
    pub copy_max_kbps: u32,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        let o = Options::default();
        WorkerSettings {
            preset: o.preset,
            crf: o.crf,
            allow_copy: o.ladder.allow_copy,
            copy_max_kbps: o.ladder.copy_max_kbps,
        }
    }
}

impl WorkerSettings {
    pub fn options(&self) -> Options {
        Options {
            preset: self.preset.clone(),
            crf: self.crf,
            ladder: LadderOptions {
                allow_copy: self.allow_copy,
                copy_max_kbps: self.copy_max_kbps,
                ..LadderOptions::default()
            },
            ..Options::default()
        }
    }
}

/// One job, as written to the worker's stdin.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkerJob {
    pub op: WorkerOp,
    pub input: PathBuf,
    pub out_dir: PathBuf,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub settings: WorkerSettings,
}

/// One line of the worker's stdout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "ev", rename_all = "snake_case")]
pub enum WorkerEvent {
    Probe {
        report: ProbeReport,
    },
    Progress {
        stage: String,
        percent: f32,
    },
    /// A mobile segment is complete (files under `out_dir`).
    Segment {
        rendition: String,
        index: u32,
    },
    Done {
        info: MediaInfo,
        timings: Option<Timings>,
    },
    Error {
        code: MediaErrorCode,
        message: String,
    },
}

/// Runs a job, reporting through `emit`.
#[cfg(feature = "ffmpeg")]
pub fn run_job(
    job: &WorkerJob,
    emit: &mut dyn FnMut(WorkerEvent),
) -> Result<MediaInfo, MediaError> {
    emit(WorkerEvent::Progress {
        stage: "validating".into(),
        percent: 0.0,
    });
    let kind = match job.op {
        WorkerOp::VoiceOver | WorkerOp::ProbeVoiceOver => MediaKind::VoiceOver,
        _ => MediaKind::Video,
    };
    let report = probe(&job.input, kind, &job.limits)?;
    emit(WorkerEvent::Probe {
        report: report.clone(),
    });
    match job.op {
        WorkerOp::Probe | WorkerOp::ProbeVoiceOver => Ok(MediaInfo {
            duration_ms: report.duration_ms,
            ..MediaInfo::default()
        }),
        WorkerOp::Video => {
            let opts = job.settings.options();
            let (info, timings) =
                transcode(&job.input, &job.out_dir, &report, &opts, &mut |e| match e {
                    Event::Progress { percent } => emit(WorkerEvent::Progress {
                        stage: "transcoding".into(),
                        percent,
                    }),
                    Event::Segment { rendition, index } => {
                        emit(WorkerEvent::Segment { rendition, index })
                    }
                })?;
            emit(WorkerEvent::Done {
                info: info.clone(),
                timings: Some(timings),
            });
            Ok(info)
        }
        WorkerOp::VoiceOver => {
            let info = crate::audio::normalise(&job.input, &job.out_dir, &report, &mut |p| {
                emit(WorkerEvent::Progress {
                    stage: "transcoding".into(),
                    percent: p,
                })
            })?;
            emit(WorkerEvent::Done {
                info: info.clone(),
                timings: None,
            });
            Ok(info)
        }
    }
}

/// The worker's main: one job from stdin, events to stdout; returns the
/// exit code.
#[cfg(feature = "ffmpeg")]
pub fn main_stdio() -> i32 {
    let stdin = std::io::stdin();
    let mut line = String::new();
    if stdin.lock().read_line(&mut line).is_err() {
        return 2;
    }
    let stdout = std::io::stdout();
    let mut emit = |e: WorkerEvent| {
        let mut out = stdout.lock();
        if let Ok(s) = serde_json::to_string(&e) {
            let _ = writeln!(out, "{s}");
            let _ = out.flush();
        }
    };
    let job: WorkerJob = match serde_json::from_str(&line) {
        Ok(j) => j,
        Err(e) => {
            emit(WorkerEvent::Error {
                code: MediaErrorCode::Internal,
                message: format!("bad job: {e}"),
            });
            return 2;
        }
    };
    match run_job(&job, &mut emit) {
        Ok(_) => 0,
        Err(e) => {
            let code = if e.code.retryable() {
                2
            } else {
                EXIT_MEDIA_ERROR
            };
            emit(WorkerEvent::Error {
                code: e.code,
                message: e.message,
            });
            code
        }
    }
}

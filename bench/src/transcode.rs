//! `chalktalk bench transcode --input FILE`: runs the real pipeline exactly
//! as the server does (one `chalktalk-media worker` process: probe,
//! one decode, every rendition, HLS, stills) on a file and reports total
//! time, time to the first playable (mobile) segment, per-rendition times
//! and the realtime factor. `chalktalk media sample --standard --out F`
//! writes the standard input (60 s 1080p30 H.264/AAC).

use std::path::PathBuf;
use std::time::Instant;

use chalktalk_media::worker::{WorkerEvent, WorkerJob, WorkerOp, WorkerSettings};
use clap::Args;
use serde::Serialize;

use super::BenchError;
use chalktalk_services::media::process::WorkerProcess;

#[derive(Args, Debug)]
pub struct TranscodeArgs {
    /// The upload to process.
    #[arg(long)]
    pub input: PathBuf,
    /// x264 preset of the renditions.
    #[arg(long, default_value = "veryfast")]
    pub preset: String,
    /// Re-encode the top rung even when the source could be packaged as is.
    #[arg(long)]
    pub no_copy: bool,
    /// Keep the outputs in this directory (default: a temporary one, removed).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Accepted for symmetry; output is always JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
pub struct TranscodeReport {
    pub input: String,
    pub media_seconds: f64,
    pub width: u32,
    pub height: u32,
    pub preset: String,
    pub probe_seconds: f64,
    /// Until the first segment of the mobile rendition was complete.
    pub first_playable_seconds: f64,
    pub total_seconds: f64,
    /// Rendition name → seconds from start until its files were final.
    pub renditions: serde_json::Map<String, serde_json::Value>,
    /// Renditions packaged from the source without re-encoding.
    pub copied: Vec<String>,
    /// Media seconds processed per wall-clock second.
    pub realtime_factor: f64,
    pub output_bytes: u64,
    pub worker_peak_rss_kib: Option<u64>,
}

fn dir_size(p: &std::path::Path) -> u64 {
    std::fs::read_dir(p)
        .map(|rd| {
            rd.flatten()
                .map(|e| match e.file_type() {
                    Ok(t) if t.is_dir() => dir_size(&e.path()),
                    _ => e.metadata().map(|m| m.len()).unwrap_or(0),
                })
                .sum()
        })
        .unwrap_or(0)
}

fn peak_rss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
}

pub async fn run(a: TranscodeArgs) -> Result<TranscodeReport, BenchError> {
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| super::target::scratch_dir("transcode"));
    std::fs::create_dir_all(&out)?;
    let job = WorkerJob {
        op: WorkerOp::Video,
        input: a.input.clone(),
        out_dir: out.clone(),
        limits: Default::default(),
        settings: WorkerSettings {
            preset: a.preset.clone(),
            allow_copy: !a.no_copy,
            ..WorkerSettings::default()
        },
    };
    let exe = chalktalk_services::media::default_worker_exe();
    let started = Instant::now();
    let mut w = WorkerProcess::start(&exe, &job)
        .await
        .map_err(|e| e.to_string())?;
    let pid = w.pid();
    let (mut probe_s, mut first_s, mut info, mut report, mut timings, mut rss) =
        (0.0, None, None, None, None, None);
    while let Some(ev) = w.next().await {
        if let Some(p) = pid {
            rss = peak_rss_kib(p).or(rss);
        }
        match ev {
            WorkerEvent::Probe { report: r } => {
                probe_s = started.elapsed().as_secs_f64();
                report = Some(r);
            }
            WorkerEvent::Segment { .. } if first_s.is_none() => {
                first_s = Some(started.elapsed().as_secs_f64())
            }
            WorkerEvent::Done {
                info: i,
                timings: t,
            } => {
                info = Some(i);
                timings = t;
            }
            _ => {}
        }
    }
    w.finish().await.map_err(|e| e.to_string())?;
    let total = started.elapsed().as_secs_f64();
    let info = info.ok_or("the worker gave no result")?;
    let report = report.ok_or("the worker gave no probe report")?;
    let mut renditions = serde_json::Map::new();
    // The worker measures from its own start; shift to the bench's clock.
    let offset = timings
        .as_ref()
        .map(|t| (total - t.total_seconds).max(0.0))
        .unwrap_or(0.0);
    for (name, secs) in timings.map(|t| t.renditions).unwrap_or_default() {
        renditions.insert(
            name,
            serde_json::json!(((secs + offset) * 1000.0).round() / 1000.0),
        );
    }
    let media_seconds = report.duration_ms as f64 / 1000.0;
    let r = TranscodeReport {
        input: a.input.display().to_string(),
        media_seconds,
        width: info.width,
        height: info.height,
        preset: a.preset,
        probe_seconds: probe_s,
        first_playable_seconds: first_s.unwrap_or(total),
        total_seconds: total,
        renditions,
        copied: info
            .renditions
            .iter()
            .filter(|r| r.copied)
            .map(|r| r.name.clone())
            .collect(),
        realtime_factor: media_seconds / total.max(1e-9),
        output_bytes: dir_size(&out),
        worker_peak_rss_kib: rss,
    };
    if a.out.is_none() {
        let _ = std::fs::remove_dir_all(&out);
    }
    Ok(r)
}

//! The EncoderPool's [`Transcoder`]: one run of a job. Fetches the source
//! if it is not on this node, runs a worker process, publishes the mobile
//! rendition segment by segment as the worker reports them (playable
//! early), then publishes everything. Dropping the run kills the worker.

use async_trait::async_trait;
use chalktalk_actors::encoder::{JobError, JobKind, JobProgress, JobSpec, ProgressFn, Transcoder};
use chalktalk_media::ladder;
use chalktalk_media::report::ProbeReport;
use chalktalk_media::worker::{WorkerEvent, WorkerJob, WorkerOp};
use chalktalk_protocol::{MediaInfo, Rendition};

use super::MediaService;
use super::process::WorkerProcess;
use super::publish::{Publisher, get_file};

/// Forgets a worker's pid when the run ends, however it ends.
struct PidGuard<'a>(&'a MediaService, String);

impl Drop for PidGuard<'_> {
    fn drop(&mut self) {
        self.0
            .workers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.1);
    }
}

/// What can be played once the mobile rendition's first segments are up.
fn early_info(report: &ProbeReport, rung: &ladder::Rung) -> MediaInfo {
    let v = report.video.as_ref();
    MediaInfo {
        duration_ms: report.duration_ms,
        width: v.map(|v| v.display_width).unwrap_or(rung.width),
        height: v.map(|v| v.display_height).unwrap_or(rung.height),
        fps: v.map(|v| v.fps).unwrap_or(0.0),
        rotation: v.map(|v| v.rotation).unwrap_or(0),
        renditions: vec![Rendition {
            name: rung.name.clone(),
            width: rung.width,
            height: rung.height,
            video_kbps: 0,
            mp4: String::new(),
            playlist: format!("hls/{}/index.m3u8", rung.name),
            copied: false,
        }],
        master: Some("hls/master.m3u8".into()),
        ..MediaInfo::default()
    }
}

#[async_trait]
impl Transcoder for MediaService {
    async fn run(
        &self,
        job: &JobSpec,
        attempt: u32,
        progress: ProgressFn,
    ) -> Result<MediaInfo, JobError> {
        let dir = self.job_dir(&job.id);
        let source = dir.join("source");
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| JobError::new("internal", format!("work dir: {e}"), true))?;
        if !tokio::fs::try_exists(&source).await.unwrap_or(false) {
            get_file(&self.blobs, &job.source_key, &source)
                .await
                .map_err(|e| {
                    JobError::new(
                        "blob_unavailable",
                        format!("cannot fetch the source: {e}"),
                        true,
                    )
                })?;
        }
        let out = dir.join(format!("out-{attempt}"));
        let _ = tokio::fs::remove_dir_all(&out).await;
        tokio::fs::create_dir_all(&out)
            .await
            .map_err(|e| JobError::new("internal", format!("out dir: {e}"), true))?;
        let op = match job.kind {
            JobKind::Video => WorkerOp::Video,
            JobKind::VoiceOver { .. } => WorkerOp::VoiceOver,
        };
        let wjob = WorkerJob {
            op,
            input: source,
            out_dir: out.clone(),
            limits: self.config.limits.clone(),
            settings: self.config.settings.clone(),
        };
        let mut worker = WorkerProcess::start(&self.config.worker_exe, &wjob).await?;
        let _pid = worker.pid().map(|pid| {
            self.workers
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(job.id.clone(), pid);
            PidGuard(self, job.id.clone())
        });
        let mut publisher = Publisher::new(self.blobs.clone(), &job.id, &out);
        let (mut report, mut mobile, mut playable, mut done, mut percent) =
            (None, None, false, None, 0.0f32);
        while let Some(ev) = worker.next().await {
            match ev {
                WorkerEvent::Probe { report: r } => {
                    mobile = ladder::plan(&r, &self.config.settings.options().ladder)
                        .and_then(|p| p.rungs.last().cloned());
                    report = Some(r);
                }
                WorkerEvent::Progress { stage, percent: p } => {
                    percent = p * 0.9;
                    progress(JobProgress {
                        stage,
                        percent,
                        playable: None,
                    });
                }
                WorkerEvent::Segment { rendition, .. } => {
                    match publisher.rendition_so_far(&rendition).await {
                        Ok(n) if n > 0 && !playable => {
                            playable = true;
                            if let (Some(r), Some(m)) = (&report, &mobile) {
                                progress(JobProgress {
                                    stage: "transcoding".into(),
                                    percent,
                                    playable: Some(early_info(r, m)),
                                });
                            }
                        }
                        Ok(_) => {}
                        Err(e) => {
                            tracing::warn!(asset = %job.id, %e, "early publish failed; the rendition goes up at the end")
                        }
                    }
                }
                WorkerEvent::Done { info, timings } => {
                    tracing::info!(asset = %job.id, ?timings, "worker finished");
                    done = Some(info);
                }
                WorkerEvent::Error { .. } => {}
            }
        }
        worker.finish().await?;
        let info = done.ok_or_else(|| {
            JobError::new("worker_crashed", "the worker ended without a result", true)
        })?;
        progress(JobProgress {
            stage: "publishing".into(),
            percent: 92.0,
            playable: None,
        });
        publisher
            .everything(mobile.as_ref().map(|m| m.name.as_str()))
            .await
            .map_err(|e| JobError::new("blob_unavailable", format!("cannot publish: {e}"), true))?;
        Ok(info)
    }
}

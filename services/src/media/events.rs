//! The EncoderPool's [`JobListener`]: keeps the asset record in step with
//! its job, pushes `media` progress frames to the uploader's devices and to
//! live rooms showing the video, delivers a durable notice on the final
//! state, attaches a ready voice-over to its room as a durable op, and
//! cleans the job's work directory.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use chalktalk_actors::Outbound;
use chalktalk_actors::encoder::{JobEvent, JobKind, JobListener, JobSpec};
use chalktalk_actors::inbox::InboxMsg;
use chalktalk_actors::room::RoomMsg;
use chalktalk_protocol::{
    Annotation, MediaFailure, MediaInfo, MediaProgress, MediaStage, Notice, Reply, Role, RoomOp,
    ServerFrame, Shape, Style, decode_server, encode,
};

use super::MediaService;

fn stage_of(s: &str) -> MediaStage {
    match s {
        "validating" => MediaStage::Validating,
        "publishing" => MediaStage::Publishing,
        _ => MediaStage::Transcoding,
    }
}

impl MediaService {
    /// Adds the voice-over to its room as a durable op by its owner and
    /// waits for the ack. Idempotent (the op id is derived from the asset).
    async fn attach_voice_over(
        &self,
        job: &JobSpec,
        room: &str,
        at_ms: f64,
        info: &MediaInfo,
    ) -> Result<u64, String> {
        let handle = self
            .directory
            .room(room)
            .await
            .map_err(|e| format!("room {room}: {e:?}"))?;
        let stats = self.directory.deps.stats.clone();
        let (out, mut rx) = Outbound::new(u64::MAX, job.owner.clone(), "voice-over".into(), stats);
        let id = format!("vo-{}", job.id);
        let ann = Annotation {
            id: id.clone(),
            author: job.owner.clone(),
            t_ms: at_ms as u64,
            dur_ms: Some(info.duration_ms.min(u32::MAX as u64) as u32),
            style: Style::default(),
            shape: Shape::VoiceOver {
                asset: job.id.clone(),
            },
        };
        handle
            .send(
                RoomMsg::Op {
                    out,
                    role: Role::Coach,
                    req: 1,
                    op_id: id,
                    op: RoomOp::Add { ann },
                },
                false,
            )
            .map_err(|(e, _)| format!("room refused the op: {e:?}"))?;
        let wait = async {
            while let Some(o) = rx.recv().await {
                if let chalktalk_actors::Out::Frame(bytes) = o
                    && let Ok(frame) = decode_server(&bytes)
                {
                    match frame {
                        ServerFrame::Ok {
                            id: 1,
                            r: Reply::Ack { seq, .. },
                        } => return Ok(seq),
                        ServerFrame::Err { id: 1, code, msg } => {
                            return Err(format!("{}: {msg}", code.as_str()));
                        }
                        _ => {}
                    }
                }
            }
            Err("the room went away".to_string())
        };
        tokio::time::timeout(Duration::from_secs(10), wait)
            .await
            .map_err(|_| "the room did not answer".to_string())?
    }

    /// Brings the asset record in step; returns what is playable so far.
    async fn record(
        &self,
        job: &JobSpec,
        stage: MediaStage,
        info: Option<&MediaInfo>,
        error: Option<&MediaFailure>,
    ) -> Option<MediaInfo> {
        match self.store.asset(&job.id).await {
            Ok(Some(mut a)) => {
                if a.stage != stage || info.is_some() || error.is_some() {
                    a.stage = stage;
                    if let Some(i) = info {
                        a.info = Some(i.clone());
                    }
                    if let Some(e) = error {
                        a.error = Some(e.clone());
                    }
                    if let Err(e) = self.store.put_asset(&a).await {
                        tracing::warn!(asset = %job.id, %e, "asset record not updated");
                    }
                }
                a.info
            }
            Ok(None) => info.cloned(),
            Err(e) => {
                tracing::warn!(asset = %job.id, %e, "asset record unavailable");
                info.cloned()
            }
        }
    }

    fn push(&self, job: &JobSpec, progress: &MediaProgress) {
        let frame = Bytes::from(encode(&ServerFrame::Media(progress.clone())));
        let _ = self.directory.inbox().cast(InboxMsg::Push {
            user: job.owner.clone(),
            frame: frame.clone(),
        });
        let video = match &job.kind {
            JobKind::Video => job.id.clone(),
            JobKind::VoiceOver { .. } => return,
        };
        for room in self.directory.rooms_showing(&video) {
            let _ = room.cast(RoomMsg::Media(frame.clone()));
        }
    }
}

#[async_trait]
impl JobListener for MediaService {
    async fn on_event(&self, job: &JobSpec, event: JobEvent) {
        let kind = job.kind.media_kind();
        let (stage, percent, info, error) = match &event {
            JobEvent::Queued { .. } => (MediaStage::Queued, 0.0, None, None),
            JobEvent::Started { .. } => (MediaStage::Validating, 0.0, None, None),
            JobEvent::Progress(p) => (stage_of(&p.stage), p.percent, p.playable.clone(), None),
            JobEvent::Retrying { attempt, error } => {
                tracing::warn!(asset = %job.id, attempt, %error, "job run failed; retrying");
                (MediaStage::Queued, 0.0, None, None)
            }
            JobEvent::Ready(info) => (MediaStage::Ready, 100.0, Some(info.clone()), None),
            JobEvent::Failed(e) => (
                MediaStage::Failed,
                100.0,
                None,
                Some(MediaFailure {
                    code: e.code.clone(),
                    message: e.message.clone(),
                }),
            ),
            JobEvent::Cancelled => (MediaStage::Cancelled, 100.0, None, None),
        };
        let mut error = error;
        let mut stage = stage;
        // Keep the record in step (not on every percent: on stage changes,
        // early playability and final states).
        let mut playable = self.record(job, stage, info.as_ref(), error.as_ref()).await;
        // A ready voice-over is attached to its room (the record is ready
        // first, so a member who sees the op can open it at once).
        if let (JobEvent::Ready(i), JobKind::VoiceOver { room, at_ms }) = (&event, &job.kind)
            && let Err(e) = self.attach_voice_over(job, room, *at_ms, i).await
        {
            tracing::warn!(asset = %job.id, %e, "voice-over ready but not attached");
            stage = MediaStage::Failed;
            error = Some(MediaFailure {
                code: "attach_failed".into(),
                message: format!("the voice-over could not be added to the room: {e}"),
            });
            playable = self.record(job, stage, None, error.as_ref()).await;
        }
        // Once something is playable, every later frame says so and carries it.
        let info = match stage {
            MediaStage::Failed | MediaStage::Cancelled => None,
            _ => info.or(playable.take()),
        };
        let progress = MediaProgress {
            asset: job.id.clone(),
            kind,
            stage,
            percent,
            playable: info.is_some(),
            info,
            error: error.clone(),
        };
        self.push(job, &progress);
        if stage.is_final() {
            let notice = Notice::Media {
                asset: job.id.clone(),
                kind,
                stage,
                error,
            };
            let _ = self.directory.inbox().cast(InboxMsg::Deliver {
                user: job.owner.clone(),
                notice,
            });
            let _ = tokio::fs::remove_dir_all(self.job_dir(&job.id)).await;
        }
    }
}

//! What happens when an upload is created and when its last byte lands:
//! limits and room membership up front, then the malware scanner, then
//! validation in a worker process (a specific error code for every kind of
//! bad file), then the source goes to the blob store and a job to the pool
//! (a full queue answers `busy` with a retry delay, and the upload is kept
//! for that retry). The errors are [`MediaError`]s.

use std::path::PathBuf;

use chalktalk_actors::encoder::{JobKind, JobSpec, SubmitError};
use chalktalk_actors::store::MembershipKind;
use chalktalk_actors::{new_id, now_ms};
use chalktalk_media::worker::{WorkerEvent, WorkerJob, WorkerOp};
use chalktalk_protocol::{Asset, MediaKind, MediaStage, annotation::MAX_VIDEO_MS};

use super::MediaService;
use super::error::MediaError;
use super::process::WorkerProcess;
use super::publish::{put_file, source_key};
use crate::auth::Claims;

/// An upload about to be created (resumable) or just received (simple).
#[derive(Debug, Clone, PartialEq)]
pub struct NewUpload {
    pub kind: MediaKind,
    pub filename: String,
    /// Total size in bytes.
    pub size: u64,
    pub content_type: Option<String>,
    /// The review room the media is for, if any.
    pub room: Option<String>,
    /// Position in the room's video (ms) a voice-over starts at, if any.
    pub at_ms: Option<f64>,
}

/// An upload whose bytes are all stored in `path`.
#[derive(Debug, Clone, PartialEq)]
pub struct CompletedUpload {
    /// The upload id (unguessable, URL-safe, 22 characters).
    pub id: String,
    pub kind: MediaKind,
    pub filename: String,
    pub size: u64,
    pub content_type: Option<String>,
    pub room: Option<String>,
    pub at_ms: Option<f64>,
    /// The staged file (in the server's upload staging directory).
    pub path: PathBuf,
}

impl MediaService {
    /// True if `user` may attach things to `room`.
    pub(super) async fn is_room_member(&self, user: &str, room: &str) -> Result<bool, MediaError> {
        let rooms = self
            .directory
            .deps
            .store
            .memberships(user, MembershipKind::Room)
            .await
            .map_err(|e| MediaError::unavailable(format!("store: {e}")))?;
        Ok(rooms.iter().any(|r| r == room))
    }

    fn busy_now(&self) -> Option<MediaError> {
        let pool = self.pool()?;
        let s = pool.stats();
        (s.queued >= self.config.pool.queue_capacity).then(|| {
            let secs = (s.queued as u64 * 30 / s.workers.max(1) as u64).max(1);
            MediaError::busy(secs)
        })
    }

    /// Runs the configured malware scanner on `path`.
    async fn scan(&self, path: &std::path::Path) -> Result<(), MediaError> {
        let Some(cmd) = self.config.scan_command.as_ref().filter(|c| !c.is_empty()) else {
            return Ok(());
        };
        let out = tokio::time::timeout(
            self.config.probe_timeout,
            tokio::process::Command::new(&cmd[0])
                .args(&cmd[1..])
                .arg(path)
                .kill_on_drop(true)
                .output(),
        )
        .await
        .map_err(|_| MediaError::unavailable("the malware scan timed out"))?
        .map_err(|e| MediaError::unavailable(format!("the malware scanner cannot run: {e}")))?;
        match out.status.code() {
            Some(0) => Ok(()),
            Some(1) => {
                tracing::warn!(path = %path.display(), "malware scanner rejected an upload");
                Err(MediaError::rejected(
                    "infected",
                    "the malware scanner rejected this file",
                ))
            }
            _ => Err(MediaError::unavailable(
                "the malware scan failed; try again later",
            )),
        }
    }

    /// Validates `path` in a worker process within the probe timeout.
    async fn validate(&self, path: &std::path::Path, kind: MediaKind) -> Result<u64, MediaError> {
        let job = WorkerJob {
            op: match kind {
                MediaKind::Video => WorkerOp::Probe,
                MediaKind::VoiceOver => WorkerOp::ProbeVoiceOver,
                // Checked by their first bytes, never by a worker.
                MediaKind::Document => return Ok(0),
            },
            input: path.to_path_buf(),
            out_dir: self.config.work_dir.clone(),
            limits: self.config.limits.clone(),
            settings: self.config.settings.clone(),
        };
        let run = async {
            let mut w = WorkerProcess::start(&self.config.worker_exe, &job)
                .await
                .map_err(|e| MediaError::unavailable(e.message))?;
            let mut duration = 0;
            while let Some(ev) = w.next().await {
                if let WorkerEvent::Probe { report } = ev {
                    duration = report.duration_ms;
                }
            }
            match w.finish().await {
                Ok(()) => Ok(duration),
                Err(e) if e.code == "worker_crashed" => Err(MediaError::rejected(
                    "corrupt",
                    "the file crashed the validator",
                )),
                Err(e) if e.retryable => Err(MediaError::unavailable(e.message)),
                Err(e) => Err(MediaError::rejected(e.code, e.message)),
            }
        };
        tokio::time::timeout(self.config.probe_timeout, run)
            .await
            .unwrap_or_else(|_| Err(MediaError::rejected("corrupt", "validation took too long")))
    }
}

/// The uploads side of the service (the server's upload routes call it
/// through their `UploadHandler` port).
impl MediaService {
    /// At creation, before any byte (for simple uploads: once the file is
    /// received): refuses early on size limits, a voice-over without its
    /// room or time or for a room `user` is not a member of, or busy
    /// encoders.
    pub async fn check_upload(&self, user: &Claims, req: &NewUpload) -> Result<(), MediaError> {
        match req.kind {
            MediaKind::Video => {
                if req.size > self.config.max_video_bytes {
                    return Err(MediaError::TooLarge(format!(
                        "videos can be at most {} MiB",
                        self.config.max_video_bytes >> 20
                    )));
                }
            }
            MediaKind::VoiceOver => {
                if req.size > self.config.max_voice_over_bytes {
                    return Err(MediaError::TooLarge(format!(
                        "voice-overs can be at most {} MiB",
                        self.config.max_voice_over_bytes >> 20
                    )));
                }
                let Some(room) = req.room.as_deref() else {
                    return Err(MediaError::Invalid {
                        field: "room",
                        problem: "a voice-over needs the room it is for".into(),
                    });
                };
                match req.at_ms {
                    Some(t) if t.is_finite() && t >= 0.0 && t <= MAX_VIDEO_MS as f64 => {}
                    _ => {
                        return Err(MediaError::Invalid {
                            field: "at_ms",
                            problem: "a voice-over needs the video time it starts at (ms, 0..24 h)"
                                .into(),
                        });
                    }
                }
                if !self.is_room_member(&user.sub, room).await? {
                    return Err(MediaError::Forbidden(
                        "you are not a member of that room".into(),
                    ));
                }
            }
            MediaKind::Document => {
                if req.size > self.config.max_document_bytes {
                    return Err(MediaError::TooLarge(format!(
                        "documents can be at most {} MiB",
                        self.config.max_document_bytes >> 20
                    )));
                }
                if req.room.is_some() || req.at_ms.is_some() {
                    return Err(MediaError::Invalid {
                        field: "room",
                        problem: "a document is not attached to a room".into(),
                    });
                }
            }
        }
        self.check_quota(&user.sub, req.size).await?;
        match self.busy_now() {
            Some(busy) => Err(busy),
            None => Ok(()),
        }
    }

    /// All bytes are in `upload.path`: checks again, scans, validates,
    /// stores the source and queues the job; answers the asset as JSON.
    /// On `Ok` the staged file has been removed; on a retryable error
    /// ([`MediaError::is_retryable`]) it is left for a retry.
    pub async fn upload_completed(
        &self,
        user: &Claims,
        upload: CompletedUpload,
    ) -> Result<serde_json::Value, MediaError> {
        let asset_id = new_id("a");
        let span = tracing::info_span!("upload_completed", asset = %asset_id, user = %user.sub, kind = ?upload.kind, size = upload.size);
        let _e = span.enter();
        drop(_e);
        let req = NewUpload {
            kind: upload.kind,
            filename: upload.filename.clone(),
            size: upload.size,
            content_type: upload.content_type.clone(),
            room: upload.room.clone(),
            at_ms: upload.at_ms,
        };
        self.check_upload(user, &req).await?;
        self.scan(&upload.path).await?;
        if upload.kind == MediaKind::Document {
            return self.store_document(user, asset_id, upload).await;
        }
        let duration_ms = self.validate(&upload.path, upload.kind).await?;
        if let Some(busy) = self.busy_now() {
            return Err(busy);
        }
        // The source: kept in the blob store, and next to the job for speed.
        let dir = self.job_dir(&asset_id);
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| MediaError::internal(format!("work dir: {e}")))?;
        let local = dir.join("source");
        if tokio::fs::hard_link(&upload.path, &local).await.is_err() {
            tokio::fs::copy(&upload.path, &local)
                .await
                .map_err(|e| MediaError::internal(format!("copy source: {e}")))?;
        }
        let key = source_key(&asset_id);
        if let Err(e) = put_file(&self.blobs, &key, &local).await {
            let _ = tokio::fs::remove_dir_all(&dir).await;
            return Err(MediaError::unavailable(format!("blob store: {e}")));
        }
        let kind = match upload.kind {
            MediaKind::Video => JobKind::Video,
            MediaKind::VoiceOver => JobKind::VoiceOver {
                room: upload.room.clone().unwrap_or_default(),
                at_ms: upload.at_ms.unwrap_or(0.0),
            },
            MediaKind::Document => {
                return Err(MediaError::internal("a document has no job"));
            }
        };
        let asset = Asset {
            id: asset_id.clone(),
            kind: upload.kind,
            owner: user.sub.clone(),
            stage: MediaStage::Queued,
            filename: upload.filename.clone(),
            size: upload.size,
            created_ms: now_ms(),
            room: upload.room.clone(),
            at_ms: upload.at_ms,
            info: None,
            error: None,
        };
        self.store
            .put_asset(&asset)
            .await
            .map_err(|e| MediaError::unavailable(format!("store: {e}")))?;
        let spec = JobSpec {
            id: asset_id.clone(),
            owner: user.sub.clone(),
            kind,
            source_key: key.clone(),
            timeout_ms: self.timeout_for(duration_ms).as_millis() as u64,
            max_attempts: self.config.max_attempts,
            created_ms: asset.created_ms,
        };
        let pool = self
            .pool()
            .ok_or_else(|| MediaError::unavailable("the encoder pool is not running"))?;
        match pool.submit(spec).await {
            Ok(_) => {}
            Err(e) => {
                let _ = tokio::fs::remove_dir_all(&dir).await;
                let _ = self.blobs.delete(&key).await;
                let failed = Asset {
                    stage: MediaStage::Cancelled,
                    ..asset
                };
                let _ = self.store.put_asset(&failed).await;
                return Err(match e {
                    SubmitError::Busy { retry_after_secs } => MediaError::busy(retry_after_secs),
                    other => MediaError::unavailable(other.to_string()),
                });
            }
        }
        let _ = tokio::fs::remove_file(&upload.path).await;
        tracing::info!(parent: &span, duration_ms, "upload accepted and queued");
        serde_json::to_value(&asset).map_err(|e| MediaError::internal(e.to_string()))
    }
}

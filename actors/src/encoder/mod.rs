//! Processing jobs for uploaded media and the ports the EncoderPool works
//! through: a [`Transcoder`] that runs one job (in `src/` it drives a
//! `chalktalk transcode-worker` process), a [`MediaStore`] that keeps assets
//! and jobs durable so a restart re-queues unfinished work, and a
//! [`JobListener`] told about every state change (progress pushes, records).

pub mod pool;

use std::sync::Arc;

use async_trait::async_trait;
use chalktalk_protocol::{Asset, MediaInfo, MediaKind, RoomId, UserId};
use serde::{Deserialize, Serialize};

use crate::store::StoreError;

pub use pool::{EncoderPool, PoolConfig, PoolError, PoolHandle, PoolStats, SubmitError};

/// What a job does besides transcoding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum JobKind {
    /// Validate and transcode a video.
    Video,
    /// Validate and normalise a voice-over, then attach it to `room` at
    /// `at_ms` of the video as a durable room op by the owner.
    VoiceOver { room: RoomId, at_ms: f64 },
}

impl JobKind {
    pub fn media_kind(&self) -> MediaKind {
        match self {
            JobKind::Video => MediaKind::Video,
            JobKind::VoiceOver { .. } => MediaKind::VoiceOver,
        }
    }
}

/// A unit of work for the pool. `id` is also the asset id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobSpec {
    pub id: String,
    pub owner: UserId,
    pub kind: JobKind,
    /// Blob key of the uploaded original.
    pub source_key: String,
    /// Dead-man timer: a run taking longer is killed and retried. Set
    /// longer than the longest legitimate job for this input.
    pub timeout_ms: u64,
    /// Runs allowed before the job fails (crashes and timeouts count).
    pub max_attempts: u32,
    pub created_ms: u64,
}

/// Where a job is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum JobState {
    Queued,
    Running,
    Done,
    Failed { code: String, reason: String },
    Cancelled,
}

impl JobState {
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            JobState::Done | JobState::Failed { .. } | JobState::Cancelled
        )
    }
}

/// A job as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    pub spec: JobSpec,
    pub state: JobState,
    /// Runs started so far.
    pub attempts: u32,
    pub updated_ms: u64,
}

/// Progress reported by a running job.
#[derive(Debug, Clone, PartialEq)]
pub struct JobProgress {
    /// "validating", "transcoding", "publishing".
    pub stage: String,
    /// 0..=100.
    pub percent: f32,
    /// Set once something can be played (the mobile rendition first).
    pub playable: Option<MediaInfo>,
}

/// Why a run failed. `retryable` runs (worker crash, timeout, I/O) are run
/// again up to `max_attempts`; the others (invalid media) fail at once.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct JobError {
    pub code: String,
    pub message: String,
    pub retryable: bool,
}

impl JobError {
    pub fn new(code: &str, message: impl Into<String>, retryable: bool) -> JobError {
        JobError {
            code: code.to_string(),
            message: message.into(),
            retryable,
        }
    }
}

/// Sink for a running job's progress.
pub type ProgressFn = Arc<dyn Fn(JobProgress) + Send + Sync>;

/// Runs one job. Dropping the future must stop the work (kill the worker
/// process): the pool cancels and enforces the dead-man timer that way.
#[async_trait]
pub trait Transcoder: Send + Sync + 'static {
    async fn run(
        &self,
        job: &JobSpec,
        attempt: u32,
        progress: ProgressFn,
    ) -> Result<MediaInfo, JobError>;
}

/// What the pool tells the listener.
#[derive(Debug, Clone, PartialEq)]
pub enum JobEvent {
    Queued {
        position: usize,
    },
    Started {
        attempt: u32,
    },
    Progress(JobProgress),
    /// A run failed and the job goes back to the queue.
    Retrying {
        attempt: u32,
        error: JobError,
    },
    Ready(MediaInfo),
    Failed(JobError),
    Cancelled,
}

/// Told about every job state change, in order per job.
#[async_trait]
pub trait JobListener: Send + Sync + 'static {
    async fn on_event(&self, job: &JobSpec, event: JobEvent);
}

/// Durable assets and jobs.
#[async_trait]
pub trait MediaStore: Send + Sync + 'static {
    async fn put_asset(&self, asset: &Asset) -> Result<(), StoreError>;
    async fn asset(&self, id: &str) -> Result<Option<Asset>, StoreError>;
    /// Assets of `owner` (every kind), by id, at most `limit`.
    async fn assets_of(&self, owner: &str, limit: usize) -> Result<Vec<Asset>, StoreError>;
    /// Forgets asset `id` (owned by `owner`): gone from `asset` and
    /// `assets_of`. Idempotent. Its jobs are kept.
    async fn delete_asset(&self, id: &str, owner: &str) -> Result<(), StoreError>;
    async fn put_job(&self, job: &JobRecord) -> Result<(), StoreError>;
    async fn job(&self, id: &str) -> Result<Option<JobRecord>, StoreError>;
    /// Jobs not in a final state, oldest first.
    async fn unfinished_jobs(&self) -> Result<Vec<JobRecord>, StoreError>;
}

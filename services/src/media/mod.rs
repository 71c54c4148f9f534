//! The media service of a node: accepts finished uploads (validation in a
//! worker process, the malware-scanner hook, limits), keeps assets and jobs
//! durable, runs the EncoderPool whose encoders drive `chalktalk-media
//! worker` processes, publishes outputs to the blob store (the
//! mobile rendition first), pushes progress to uploaders and rooms, attaches
//! voice-overs to rooms, and answers `media_link` / `cancel_media`.
//!
//! Module map: `uploads` (an upload's checks and acceptance, and the
//! [`NewUpload`] / [`CompletedUpload`] it is given), `jobs` and [`process`]
//! (encoding jobs in worker processes), [`publish`] (files to and from the
//! blob store), `events` (progress to uploaders and rooms), `requests`
//! (`media_link`, `cancel_media`), [`sign`] (signed media links, asset
//! keys) and [`error`] ([`MediaError`]). The HTTP routes (uploads, serving
//! links) are the server's.

mod documents;
pub mod error;
mod events;
mod jobs;
pub mod library;
pub mod process;
pub mod publish;
mod requests;
pub mod sign;
mod uploads;

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use chalktalk_actors::Directory;
use chalktalk_actors::encoder::pool::{Claims, PoolError, PoolHandle};
use chalktalk_actors::encoder::{EncoderPool, MediaStore, PoolConfig};
use chalktalk_adapters::blob::BlobStore;
use chalktalk_media::report::Limits;
use chalktalk_media::worker::WorkerSettings;

pub use error::MediaError;
pub use requests::MediaGrant;
pub use sign::UrlSigner;
pub use uploads::{CompletedUpload, NewUpload};

/// Settings of the media pipeline.
#[derive(Debug, Clone)]
pub struct MediaConfig {
    /// The binary to run as `… worker` (default: [`default_worker_exe`]).
    pub worker_exe: PathBuf,
    /// Where jobs keep their source and outputs while running.
    pub work_dir: PathBuf,
    pub limits: Limits,
    pub settings: WorkerSettings,
    pub pool: PoolConfig,
    /// Runs (crashes and timeouts count) before a job fails.
    pub max_attempts: u32,
    /// Dead-man timer: `timeout_base + timeout_per_media_second × duration`.
    pub timeout_base: Duration,
    pub timeout_per_media_second: Duration,
    /// Validation of a finished upload must end within this.
    pub probe_timeout: Duration,
    /// Malware scanner: a command run with the file's path as its last
    /// argument; exit 0 = clean, 1 = infected, anything else = scan failed.
    pub scan_command: Option<Vec<String>>,
    /// Lifetime of signed media links.
    pub link_ttl: Duration,
    pub max_video_bytes: u64,
    pub max_voice_over_bytes: u64,
    /// Documents (PDF, PNG, JPEG, WebP handed out as they are).
    pub max_document_bytes: u64,
    /// Storage per user (the original sizes of their assets), bytes;
    /// `None`: no quota.
    pub quota_bytes: Option<u64>,
}

/// The worker binary: `chalktalk-media` beside this binary, else from
/// `PATH` ([`crate::binaries::sibling`]).
pub fn default_worker_exe() -> PathBuf {
    crate::binaries::sibling(crate::binaries::MEDIA)
}

impl MediaConfig {
    /// Defaults for a node whose data lives in `data_dir`.
    pub fn new(data_dir: &std::path::Path) -> MediaConfig {
        MediaConfig {
            worker_exe: default_worker_exe(),
            work_dir: data_dir.join("media-work"),
            limits: Limits::default(),
            settings: WorkerSettings::default(),
            pool: PoolConfig::default(),
            max_attempts: 3,
            timeout_base: Duration::from_secs(120),
            timeout_per_media_second: Duration::from_secs(10),
            probe_timeout: Duration::from_secs(60),
            scan_command: None,
            link_ttl: Duration::from_secs(3600),
            max_video_bytes: 2 << 30,
            max_voice_over_bytes: 200 << 20,
            max_document_bytes: 25 << 20,
            quota_bytes: Some(20 << 30),
        }
    }
}

/// The media service (one per node).
pub struct MediaService {
    pub config: MediaConfig,
    pub blobs: Arc<dyn BlobStore>,
    pub store: Arc<dyn MediaStore>,
    pub directory: Arc<Directory>,
    pub signer: UrlSigner,
    pool: OnceLock<PoolHandle>,
    /// Pids of running workers by asset (tests kill them; ops look at them).
    pub workers: std::sync::Mutex<std::collections::HashMap<String, u32>>,
}

impl MediaService {
    /// Creates the service and starts its EncoderPool (which re-queues the
    /// unfinished jobs found in the store).
    pub async fn start(
        config: MediaConfig,
        blobs: Arc<dyn BlobStore>,
        store: Arc<dyn MediaStore>,
        directory: Arc<Directory>,
        signer: UrlSigner,
    ) -> Result<Arc<MediaService>, PoolError> {
        std::fs::create_dir_all(&config.work_dir)
            .map_err(|e| PoolError::Spawn(format!("{}: {e}", config.work_dir.display())))?;
        let pool_config = config.pool.clone();
        // In a cluster, jobs run where their lease is held (a dead node's
        // are taken over): chalktalk_actors::encoder::pool::Claims.
        let claims = directory.deps.placement.clone().map(Claims::new);
        let svc = Arc::new(MediaService {
            config,
            blobs,
            store: store.clone(),
            directory,
            signer,
            pool: OnceLock::new(),
            workers: Default::default(),
        });
        let pool = EncoderPool::start_claimed(pool_config, svc.clone(), store, svc.clone(), claims)
            .await?;
        let _ = svc.pool.set(pool);
        Ok(svc)
    }

    pub fn pool(&self) -> Option<&PoolHandle> {
        self.pool.get()
    }

    /// Stops the pool (running workers are killed with their jobs left
    /// unfinished in the store, to be re-queued by the next start).
    pub fn stop(&self) {
        if let Some(p) = self.pool.get() {
            p.stop();
        }
    }

    fn job_dir(&self, asset: &str) -> PathBuf {
        self.config.work_dir.join(asset)
    }

    /// Dead-man timer for a job on `duration_ms` of media.
    fn timeout_for(&self, duration_ms: u64) -> Duration {
        self.config.timeout_base
            + self
                .config
                .timeout_per_media_second
                .mul_f64(duration_ms as f64 / 1000.0)
    }
}

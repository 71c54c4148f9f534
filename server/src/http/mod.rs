//! The HTTP API next to the WebSocket gateway: resumable uploads of videos and
//! voice-overs (tus-1.0-core-like, `/api/v1/uploads`), one-request uploads of
//! small files (`/api/v1/uploads/simple`) and signed media links
//! (`/media/{token}/{asset}/{path}`). The wire contract is in
//! docs/PROTOCOL.md, "HTTP uploads and media links".
//!
//! What happens to a finished upload is not decided here: the media service
//! (`chalktalk_services::media`, through the impl below) implements
//! [`UploadHandler`], which may refuse an upload at creation
//! ([`UploadHandler::check`]) and takes ownership of the staged file when all
//! bytes are in ([`UploadHandler::completed`]).
//!
//! Module map: [`error`] (the JSON error of every route, and how each
//! service's error maps to it), `staging` (the on-disk state of
//! uploads in progress, per-upload locks, the sweeper), `uploads` (the
//! resumable routes), `simple` (multipart uploads), `media` (serving blobs
//! with ranges; link tokens are `chalktalk_services::media::sign`).

mod doc;
pub mod error;
mod media;
mod simple;
mod staging;
mod uploads;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use axum::extract::DefaultBodyLimit;
use axum::http::HeaderMap;
use axum::routing::get;
use chalktalk_adapters::blob::BlobStore;
use tokio::task::JoinHandle;
use utoipa_axum::{router::OpenApiRouter, routes};

use chalktalk_services::auth::{Auth, Claims};
use chalktalk_services::media::MediaService;

// The types in the signatures of `UploadHandler` and `HttpState::new`.
pub use chalktalk_services::media::{CompletedUpload, NewUpload, UrlSigner};
pub use error::ApiError;
pub use staging::{UploadLocks, sweep_once};

/// Limits and places of the upload routes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadConfig {
    /// Where uploads in progress live (`{id}.json` + `{id}.data`).
    pub staging_dir: PathBuf,
    /// Largest resumable upload (default 2 GiB).
    pub max_upload_bytes: u64,
    /// Largest `/api/v1/uploads/simple` file (default 32 MiB).
    pub max_simple_upload_bytes: u64,
    /// Largest body of one PATCH (default 16 MiB).
    pub max_chunk_bytes: u64,
    /// An incomplete upload without activity for this long is removed
    /// (default 24 h).
    pub incomplete_ttl: Duration,
    /// How often the sweeper runs (default 60 s).
    pub sweep_every: Duration,
    /// A request body that sends nothing for this long is treated as
    /// interrupted (default 60 s).
    pub body_idle_timeout: Duration,
}

impl UploadConfig {
    /// The defaults, staging in `staging_dir`.
    pub fn new(staging_dir: impl Into<PathBuf>) -> UploadConfig {
        UploadConfig {
            staging_dir: staging_dir.into(),
            max_upload_bytes: 2 << 30,
            max_simple_upload_bytes: 32 << 20,
            max_chunk_bytes: 16 << 20,
            incomplete_ttl: Duration::from_secs(24 * 3600),
            sweep_every: Duration::from_secs(60),
            body_idle_timeout: Duration::from_secs(60),
        }
    }
}

/// What to do with uploads; implemented by the media pipeline.
#[async_trait]
pub trait UploadHandler: Send + Sync + 'static {
    /// At creation, before any byte (for simple uploads: once the file is
    /// received): may refuse early (size/duration limits, not a member of
    /// `room`, queue busy).
    async fn check(&self, user: &Claims, req: &NewUpload) -> Result<(), ApiError>;
    /// All bytes are stored in `upload.path`. Validates and queues the
    /// media; the JSON returned goes to the client (200).
    ///
    /// On `Ok` the handler owns the file: it must move it out of the staging
    /// directory (or be done with it) before returning, since a file left
    /// there without its upload record is swept after `incomplete_ttl`. On a
    /// retryable error (5xx, e.g. [`ApiError::busy`]) the resumable upload is
    /// kept for a retry (an empty PATCH); on any other error it is deleted.
    async fn completed(
        &self,
        user: &Claims,
        upload: CompletedUpload,
    ) -> Result<serde_json::Value, ApiError>;
}

/// The media service takes the uploads of a node.
#[async_trait]
impl UploadHandler for MediaService {
    async fn check(&self, user: &Claims, req: &NewUpload) -> Result<(), ApiError> {
        Ok(self.check_upload(user, req).await?)
    }

    async fn completed(
        &self,
        user: &Claims,
        upload: CompletedUpload,
    ) -> Result<serde_json::Value, ApiError> {
        Ok(self.upload_completed(user, upload).await?)
    }
}

/// Everything the routes need.
#[derive(Clone)]
pub struct HttpState {
    pub auth: Auth,
    pub uploads: Arc<UploadConfig>,
    pub blobs: Arc<dyn BlobStore>,
    pub handler: Arc<dyn UploadHandler>,
    pub signer: UrlSigner,
    /// Per-upload locks; shared by the routes and the sweeper of one process.
    pub locks: UploadLocks,
}

impl HttpState {
    /// A state with fresh upload locks.
    pub fn new(
        auth: Auth,
        uploads: UploadConfig,
        blobs: Arc<dyn BlobStore>,
        handler: Arc<dyn UploadHandler>,
        signer: UrlSigner,
    ) -> HttpState {
        HttpState {
            auth,
            uploads: Arc::new(uploads),
            blobs,
            handler,
            signer,
            locks: UploadLocks::default(),
        }
    }
}

/// The upload and media routes, state applied (merge them into the gateway's
/// router); the upload routes are in the OpenAPI document, the media links
/// (`/media/…`, not an API) are not.
pub fn routes(state: HttpState) -> OpenApiRouter {
    // The multipart extractor enforces this on the whole request body; the
    // file part itself is limited exactly while it is streamed.
    let simple_limit = usize::try_from(
        state
            .uploads
            .max_simple_upload_bytes
            .saturating_add(64 * 1024),
    )
    .unwrap_or(usize::MAX);
    let (schemas, paths, simple) = routes!(simple::upload);
    OpenApiRouter::new()
        .routes(routes!(uploads::create))
        .routes((
            schemas,
            paths,
            simple.layer(DefaultBodyLimit::max(simple_limit)),
        ))
        .routes(routes!(
            uploads::status,
            uploads::head,
            uploads::patch,
            uploads::delete
        ))
        .route(
            "/media/{token}/{asset}/{*path}",
            get(media::serve).head(media::serve),
        )
        .with_state(state)
}

/// Runs [`sweep_once`] every `sweep_every` until the task is aborted.
pub fn spawn_sweeper(state: HttpState) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(state.uploads.sweep_every);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            let removed = sweep_once(&state, SystemTime::now()).await;
            if removed > 0 {
                tracing::info!(removed, "swept stale uploads");
            }
        }
    })
}

/// The caller, from `Authorization: Bearer <jwt>`: signature, expiry,
/// issuer and audience, the session against the shared revocation list, and
/// TOTP enrollment of coaches and admins (`crate::accounts::guard`, the one
/// check of every REST route).
pub(crate) async fn authenticate(auth: &Auth, headers: &HeaderMap) -> Result<Claims, ApiError> {
    crate::accounts::authenticate(auth, headers).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use chalktalk_protocol::Role;

    #[tokio::test]
    async fn bearer_tokens() {
        let auth = Auth::new(b"0123456789abcdef0123456789abcdef");
        let token = auth.mint("u-1", Role::Coach, 60).unwrap();
        let mut h = HeaderMap::new();
        assert_eq!(
            authenticate(&auth, &h).await.unwrap_err().code,
            "unauthorized"
        );
        h.insert("authorization", format!("bearer {token}").parse().unwrap());
        assert_eq!(authenticate(&auth, &h).await.unwrap().sub, "u-1");
        h.insert("authorization", "Bearer nope".parse().unwrap());
        assert_eq!(
            authenticate(&auth, &h).await.unwrap_err().status.as_u16(),
            401
        );
        h.insert("authorization", format!("Basic {token}").parse().unwrap());
        assert_eq!(
            authenticate(&auth, &h).await.unwrap_err().status.as_u16(),
            401
        );
    }

    #[test]
    fn defaults() {
        let c = UploadConfig::new("/tmp/x");
        assert_eq!(c.max_upload_bytes, 2 * 1024 * 1024 * 1024);
        assert_eq!(c.max_simple_upload_bytes, 32 * 1024 * 1024);
        assert_eq!(c.max_chunk_bytes, 16 * 1024 * 1024);
        assert_eq!(c.incomplete_ttl, Duration::from_secs(86_400));
    }
}

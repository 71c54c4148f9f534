//! OpenAPI schemas of the upload routes (the handlers build these bodies
//! as JSON; the field lists here follow docs/PROTOCOL.md, "HTTP uploads").

use serde::Serialize;
use utoipa::ToSchema;

/// `POST /api/v1/uploads` body.
#[derive(Serialize, ToSchema)]
pub struct NewUploadBody {
    /// `video` (default) or `voice_over`.
    pub kind: Option<String>,
    /// 1..=255 bytes, no control characters.
    pub filename: String,
    /// Total bytes (at most `max_upload_mb`).
    pub size: u64,
    pub content_type: Option<String>,
    /// The review room the media is for (required for a voice-over).
    pub room: Option<String>,
    /// Video time (ms) a voice-over starts at (required for a voice-over).
    pub at_ms: Option<f64>,
}

/// A resumable upload was created (also `Location`, `Upload-Offset: 0`,
/// `Upload-Length` headers).
#[derive(Serialize, ToSchema)]
pub struct UploadCreated {
    pub id: String,
    pub offset: u64,
    pub size: u64,
    /// Largest PATCH body.
    pub max_chunk_bytes: u64,
    /// Deleted if unfinished and untouched by then.
    pub expires_ms: u64,
}

/// Where a resumable upload stands.
#[derive(Serialize, ToSchema)]
pub struct UploadStatus {
    pub id: String,
    pub offset: u64,
    pub size: u64,
    pub complete: bool,
    pub kind: String,
    pub filename: String,
    pub expires_ms: u64,
}

/// The media asset created by a completed upload (PROTOCOL.md, "Asset and
/// MediaInfo"); processing goes on in the background and its progress is
/// pushed over the WebSocket.
#[derive(Serialize, ToSchema)]
pub struct UploadedAsset {
    /// `a-` + 20 hex digits.
    pub id: String,
    /// `video` or `voice_over`.
    pub kind: String,
    pub owner: String,
    /// `queued` `validating` `transcoding` `publishing` `ready` `failed` `cancelled`.
    pub stage: String,
    pub filename: String,
    pub size: u64,
    pub created_ms: u64,
    pub room: Option<String>,
    pub at_ms: Option<f64>,
    /// `MediaInfo`, once something is published.
    #[schema(value_type = Option<Object>)]
    pub info: Option<serde_json::Value>,
    /// `{code, message}` when failed.
    #[schema(value_type = Option<Object>)]
    pub error: Option<serde_json::Value>,
}

//! Media assets on the wire: what an uploaded video or voice-over became
//! (renditions, HLS, poster, sprite, proxy) and the progress pushed while it
//! is processed. Paths in [`MediaInfo`] are relative to the asset's root;
//! clients turn them into URLs with a signed link (`media_link`).

use serde::{Deserialize, Serialize};

use crate::UserId;

/// What an upload is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaKind {
    /// A training video: validated, transcoded to renditions + HLS.
    Video,
    /// A coach's recorded commentary: validated, loudness-normalised, AAC.
    VoiceOver,
    /// A file handed out as it is (a PDF training plan, an image): its
    /// type checked from its first bytes, served for download.
    Document,
}

/// Where an asset is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaStage {
    Queued,
    Validating,
    Transcoding,
    Publishing,
    Ready,
    Failed,
    Cancelled,
}

impl MediaStage {
    /// True when nothing more will happen to the asset.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            MediaStage::Ready | MediaStage::Failed | MediaStage::Cancelled
        )
    }
}

/// One H.264/AAC rendition of a video.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rendition {
    /// "1080p", "720p", "480p" (named by the short side).
    pub name: String,
    pub width: u32,
    pub height: u32,
    /// Average video bitrate of the encoded file, kbit/s.
    pub video_kbps: u32,
    /// Progressive MP4 with faststart, e.g. "mp4/720p.mp4".
    pub mp4: String,
    /// HLS media playlist, e.g. "hls/720p/index.m3u8".
    pub playlist: String,
    /// True when the source was already fit for this rung and was packaged
    /// without re-encoding.
    pub copied: bool,
}

/// Everything a finished (or partly published) asset offers.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct MediaInfo {
    pub duration_ms: u64,
    /// Display size (rotation applied).
    pub width: u32,
    pub height: u32,
    pub fps: f32,
    /// Rotation the phone recorded (0, 90, 180, 270); outputs are upright.
    pub rotation: u32,
    /// Best first, mobile last.
    pub renditions: Vec<Rendition>,
    /// HLS master playlist ("hls/master.m3u8").
    pub master: Option<String>,
    pub poster: Option<String>,
    /// Thumbnail sprite for the scrub bar and its WebVTT index.
    pub sprite: Option<String>,
    pub sprite_vtt: Option<String>,
    /// Low-resolution, short-GOP MP4 for frame stepping and slow motion.
    pub proxy: Option<String>,
    /// Voice-overs: the normalised AAC file ("audio.m4a").
    pub audio: Option<String>,
    /// Voice-overs: integrated loudness after normalisation, LUFS.
    pub loudness_lufs: Option<f32>,
    /// Documents: the file ("doc/<name>") and its media type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime: Option<String>,
}

/// An uploaded asset as the server keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Asset {
    pub id: String,
    pub kind: MediaKind,
    pub owner: UserId,
    pub stage: MediaStage,
    pub filename: String,
    pub size: u64,
    pub created_ms: u64,
    /// Voice-overs: the room and video time it is attached to.
    #[serde(default)]
    pub room: Option<crate::RoomId>,
    #[serde(default)]
    pub at_ms: Option<f64>,
    /// Filled once known (mobile rendition early, the rest when ready).
    pub info: Option<MediaInfo>,
    /// Why it failed: a documented error code and a human message.
    pub error: Option<MediaFailure>,
}

/// A stable error code (see docs/PROTOCOL.md, media errors) and a message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MediaFailure {
    pub code: String,
    pub message: String,
}

/// Pushed to the uploader's sessions and to rooms showing the asset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MediaProgress {
    pub asset: String,
    pub kind: MediaKind,
    pub stage: MediaStage,
    /// 0..=100 over the whole job.
    pub percent: f32,
    /// True once a rendition can be played (the mobile one comes first).
    pub playable: bool,
    /// With `playable` or `ready`: what can be played so far.
    pub info: Option<MediaInfo>,
    pub error: Option<MediaFailure>,
}

//! Media errors: a stable code per kind of bad input (documented in
//! docs/PROTOCOL.md, "Media errors") and a human message.

use serde::{Deserialize, Serialize};

/// Stable codes clients can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaErrorCode {
    /// Not a media file at all (text, random bytes, an image).
    NotMedia,
    /// A media container or codec chalktalk does not accept.
    UnsupportedCodec,
    /// The file cannot be read or decoded.
    Corrupt,
    /// The file ends before its declared duration (an interrupted copy).
    Truncated,
    /// A video upload without a video stream.
    AudioOnly,
    /// A voice-over without an audio stream.
    NoAudio,
    /// Wider or taller than allowed.
    TooLargeDimensions,
    /// Longer than allowed.
    TooLong,
    /// No frames or no samples.
    Empty,
    /// The malware scanner said no.
    Infected,
    /// Something on the server's side (disk, encoder missing): retryable.
    Internal,
}

impl MediaErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            MediaErrorCode::NotMedia => "not_media",
            MediaErrorCode::UnsupportedCodec => "unsupported_codec",
            MediaErrorCode::Corrupt => "corrupt",
            MediaErrorCode::Truncated => "truncated",
            MediaErrorCode::AudioOnly => "audio_only",
            MediaErrorCode::NoAudio => "no_audio",
            MediaErrorCode::TooLargeDimensions => "too_large_dimensions",
            MediaErrorCode::TooLong => "too_long",
            MediaErrorCode::Empty => "empty",
            MediaErrorCode::Infected => "infected",
            MediaErrorCode::Internal => "internal",
        }
    }

    /// True when running the job again may succeed.
    pub fn retryable(self) -> bool {
        matches!(self, MediaErrorCode::Internal)
    }
}

/// A rejected or failed media operation.
#[derive(Debug, Clone, PartialEq, thiserror::Error, Serialize, Deserialize)]
#[error("{}: {message}", code.as_str())]
pub struct MediaError {
    pub code: MediaErrorCode,
    pub message: String,
}

impl MediaError {
    pub fn new(code: MediaErrorCode, message: impl Into<String>) -> MediaError {
        MediaError {
            code,
            message: message.into(),
        }
    }

    /// A server-side failure (I/O, FFmpeg refusing our own settings).
    pub fn internal(what: &str, e: impl std::fmt::Display) -> MediaError {
        MediaError::new(MediaErrorCode::Internal, format!("{what}: {e}"))
    }
}

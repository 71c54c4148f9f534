//! The plain data of the media pipeline, without FFmpeg: what an upload may
//! be ([`Limits`]), what validation learned ([`ProbeReport`]), the encoder
//! settings ([`Options`]) and what a run reports ([`Event`], [`Timings`]).
//! The server links only this (and the worker protocol); the worker binary
//! links the FFmpeg side (feature `ffmpeg`).

use serde::{Deserialize, Serialize};

use crate::ladder::LadderOptions;

/// What an upload may be.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Limits {
    /// Longest side of a video, pixels.
    pub max_long_side: u32,
    /// Shortest side of a video, pixels.
    pub max_short_side: u32,
    pub max_duration_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_long_side: 4096,
            max_short_side: 2304,
            max_duration_ms: 30 * 60 * 1000,
        }
    }
}

/// The video stream of a probed file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VideoInfo {
    pub index: usize,
    pub codec: String,
    /// Coded size.
    pub width: u32,
    pub height: u32,
    /// Size shown to the viewer (rotation applied).
    pub display_width: u32,
    pub display_height: u32,
    pub fps: f32,
    /// Clockwise degrees to turn the coded picture upright: 0, 90, 180, 270.
    pub rotation: u32,
    pub pix_fmt: String,
    pub kbps: u32,
    pub frames: u64,
    /// Longest distance between two keyframes.
    pub max_keyframe_gap_ms: u64,
    /// Keyframes (sync samples) that hold no IDR picture: open-GOP
    /// recovery points, where a decoder (a browser after a seek) cannot
    /// start. H.264 only; such a source is never copied into a rendition.
    #[serde(default)]
    pub keyframes_not_idr: u64,
}

/// The audio stream of a probed file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AudioInfo {
    pub index: usize,
    pub codec: String,
    pub sample_rate: u32,
    pub channels: u16,
    pub kbps: u32,
}

/// Everything validation learned about a file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeReport {
    pub format: String,
    pub duration_ms: u64,
    pub video: Option<VideoInfo>,
    pub audio: Option<AudioInfo>,
}

/// Encoder settings.
#[derive(Debug, Clone)]
pub struct Options {
    pub ladder: LadderOptions,
    /// x264 preset of the renditions.
    pub preset: String,
    pub crf: u8,
    pub proxy_preset: String,
    /// Keyframe interval of the proxy, frames.
    pub proxy_gop: u32,
    pub segment_seconds: u32,
    pub audio_kbps: u32,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            ladder: LadderOptions::default(),
            preset: "veryfast".into(),
            crf: 23,
            proxy_preset: "ultrafast".into(),
            proxy_gop: 6,
            segment_seconds: 2,
            audio_kbps: 128,
        }
    }
}

/// What the pipeline reports while it runs.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Progress {
        percent: f32,
    },
    /// A segment of the mobile rendition (`rendition`) is complete on disk.
    Segment {
        rendition: String,
        index: u32,
    },
}

/// Per-run timings, for the benchmark.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Timings {
    /// Seconds from start until the first mobile segment was complete.
    pub first_segment_seconds: f64,
    pub total_seconds: f64,
    /// (rendition, seconds until its files were final).
    pub renditions: Vec<(String, f64)>,
}

//! Limits the server enforces and announces in `welcome`, so clients can
//! stay inside them instead of discovering them by error.

use serde::{Deserialize, Serialize};

/// Size and rate limits of one connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    /// Largest WebSocket message accepted, in bytes. Larger: close 1009.
    pub max_frame_bytes: u32,
    /// Most points in one `points` batch (live stroke preview).
    pub max_points_per_batch: u32,
    /// Most points in one committed stroke.
    pub max_points_per_stroke: u32,
    /// Longest chat message text, in bytes of UTF-8.
    pub max_text_bytes: u32,
    /// Longest text label annotation, in bytes of UTF-8.
    pub max_label_bytes: u32,
    /// Most attachments on one message.
    pub max_attachments: u32,
    /// Sustained frames per second one session may send.
    pub frames_per_sec: u32,
    /// Burst of frames above the sustained rate.
    pub frame_burst: u32,
    /// Most members one review room or thread may have.
    pub max_members: u32,
    /// Most messages one `history` page returns.
    pub max_history_page: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frame_bytes: 64 * 1024,
            max_points_per_batch: 256,
            max_points_per_stroke: 4096,
            max_text_bytes: 4000,
            max_label_bytes: 280,
            max_attachments: 10,
            frames_per_sec: 200,
            frame_burst: 400,
            max_members: 64,
            max_history_page: 200,
        }
    }
}

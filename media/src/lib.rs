//! chalktalk-media: everything that touches FFmpeg, and the worker binary
//! that runs it (`chalktalk-media`, src/main.rs). With feature `ffmpeg`
//! (default): probing and validation of uploads (`probe`), the one-decode
//! video pipeline that writes renditions, HLS, poster, sprite and proxy
//! (`transcode`), voice-over normalisation (`audio`), test/bench clip
//! generation (`sample`). Without it, only what the server needs: the plain
//! data ([`report`]), the rendition ladder ([`ladder`]), HLS playlists
//! ([`hls`]) and the line protocol spoken with the worker process
//! ([`worker`]). The server never links FFmpeg: untrusted input is decoded
//! only in `chalktalk-media worker` processes.

#[cfg(feature = "ffmpeg")]
pub mod audio;
#[cfg(feature = "ffmpeg")]
mod enc;
pub mod error;
pub mod hls;
#[cfg(feature = "ffmpeg")]
pub mod jpeg;
pub mod ladder;
pub mod nal;
#[cfg(feature = "ffmpeg")]
pub mod outputs;
#[cfg(feature = "ffmpeg")]
pub mod probe;
pub mod report;
#[cfg(feature = "ffmpeg")]
pub mod sample;
#[cfg(feature = "ffmpeg")]
pub mod transcode;
pub mod worker;

pub use error::{MediaError, MediaErrorCode};
#[cfg(feature = "ffmpeg")]
pub use probe::probe;
pub use report::{Limits, ProbeReport};

#[cfg(feature = "ffmpeg")]
/// Initialises FFmpeg once per process and keeps its logging quiet (errors
/// only); safe to call many times.
pub fn init() {
    static INIT: std::sync::Once = std::sync::Once::new();
    INIT.call_once(|| {
        let _ = ffmpeg_next::init();
        ffmpeg_next::util::log::set_level(ffmpeg_next::util::log::Level::Fatal);
    });
}

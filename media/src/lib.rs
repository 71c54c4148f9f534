//! chalktalk-media: everything that touches FFmpeg. Probing and validation
//! of uploads ([`probe`]), the one-decode video pipeline that writes
//! renditions, HLS, poster, sprite and proxy ([`transcode`]), voice-over
//! normalisation ([`audio`]), test/bench clip generation ([`sample`]) and the
//! line protocol spoken by the `chalktalk transcode-worker` process
//! ([`worker`]). The server never links a decoder into its own process for
//! untrusted input: it runs this code in a worker process.

pub mod audio;
mod enc;
pub mod error;
pub mod hls;
pub mod jpeg;
pub mod ladder;
pub mod outputs;
pub mod probe;
pub mod sample;
pub mod transcode;
pub mod worker;

pub use error::{MediaError, MediaErrorCode};
pub use probe::{Limits, ProbeReport, probe};

use std::sync::Once;

/// Initialises FFmpeg once per process and keeps its logging quiet (errors
/// only); safe to call many times.
pub fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        let _ = ffmpeg_next::init();
        ffmpeg_next::util::log::set_level(ffmpeg_next::util::log::Level::Fatal);
    });
}

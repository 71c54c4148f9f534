//! How the binaries of a deployment find each other (`chalktalk`,
//! `chalktalk-media`, `chalktalk-bench`): beside the running binary, where
//! the build and the Docker image put them, else by name from `PATH`.

use std::path::PathBuf;

/// The server binary.
pub const SERVER: &str = "chalktalk";
/// The media worker (crate chalktalk-media, media/src/main.rs).
pub const MEDIA: &str = "chalktalk-media";
/// The benchmarks (crate chalktalk-bench).
pub const BENCH: &str = "chalktalk-bench";

/// The binary `name` beside the running one if it is there, else `name`
/// (looked up in `PATH` when run).
pub fn sibling(name: &str) -> PathBuf {
    std::env::current_exe()
        .map(|e| e.with_file_name(name))
        .ok()
        .filter(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from(name))
}

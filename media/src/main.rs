//! `chalktalk-media`: the media worker and tools, the only binary that links
//! FFmpeg. `worker` runs one job read from stdin (the server starts one such
//! process per job, so decoding untrusted files never happens in the
//! server); `sample` writes a generated test clip; `probe` validates a file
//! as an upload would be.

use std::path::PathBuf;
use std::process::ExitCode;

use chalktalk_media::sample::{SampleSpec, generate};
use chalktalk_protocol::MediaKind;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "chalktalk-media",
    version,
    about = "chalktalk's media worker and tools"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs one media job read from stdin, events to stdout (started by
    /// the server).
    Worker,
    /// Writes a generated test clip (moving pattern with noise + tone).
    /// `--standard` is the benchmark input: 60 s 1080p30 H.264/AAC.
    Sample {
        #[arg(long)]
        out: PathBuf,
        #[arg(long)]
        standard: bool,
        #[arg(long, default_value_t = 10.0)]
        seconds: f32,
        #[arg(long, default_value_t = 1280)]
        width: u32,
        #[arg(long, default_value_t = 720)]
        height: u32,
        /// Clockwise rotation to record as phone metadata (0/90/180/270).
        #[arg(long, default_value_t = 0)]
        rotation: u32,
        /// Open-GOP keyframes (non-IDR recovery points, FFmpeg's libx264
        /// default) instead of a phone's closed GOPs.
        #[arg(long)]
        open_gop: bool,
    },
    /// Validates a file as an upload would be and prints the probe report.
    Probe {
        file: PathBuf,
        #[arg(long)]
        voice_over: bool,
    },
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Worker => {
            die_with_parent();
            let code = chalktalk_media::worker::main_stdio();
            ExitCode::from(u8::try_from(code).unwrap_or(1))
        }
        Command::Sample {
            out,
            standard,
            seconds,
            width,
            height,
            rotation,
            open_gop,
        } => {
            let spec = if standard {
                SampleSpec::standard()
            } else {
                SampleSpec {
                    rotation,
                    open_gop,
                    seconds,
                    width,
                    height,
                    ..SampleSpec::standard()
                }
            };
            match generate(&out, &spec) {
                Ok(()) => {
                    println!("{}", out.display());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: writing {}: {e}", out.display());
                    ExitCode::FAILURE
                }
            }
        }
        Command::Probe { file, voice_over } => {
            let kind = if voice_over {
                MediaKind::VoiceOver
            } else {
                MediaKind::Video
            };
            match chalktalk_media::probe(&file, kind, &chalktalk_media::Limits::default()) {
                Ok(report) => match serde_json::to_string_pretty(&report) {
                    Ok(json) => {
                        println!("{json}");
                        ExitCode::SUCCESS
                    }
                    Err(e) => {
                        eprintln!("error: {e}");
                        ExitCode::FAILURE
                    }
                },
                Err(e) => {
                    eprintln!("error: {}: {e}", file.display());
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// A worker must not outlive its server (a `kill -9` of the server leaves
/// no one to read its results): ask the kernel to kill it with its parent.
fn die_with_parent() {
    #[cfg(target_os = "linux")]
    // SAFETY: prctl with PR_SET_PDEATHSIG only sets a flag of this process.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        if libc::getppid() == 1 {
            // The parent died before the flag was set.
            std::process::exit(2);
        }
    }
}

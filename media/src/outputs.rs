//! Output files of the pipeline: for each rung a progressive MP4 (moov at
//! the front) and an HLS rendition (2 s MPEG-TS segments, an event playlist
//! that grows while encoding and ends with ENDLIST), both fed with the same
//! encoded packets; and the proxy MP4.

use std::path::{Path, PathBuf};

use ff::Rational;
use ffmpeg_next as ff;

use crate::enc::dict;
use crate::error::MediaError;

/// Where the audio of every output comes from.
#[derive(Clone)]
pub enum AudioSource<'a> {
    None,
    /// The source's own AAC stream parameters (packets copied).
    Copy(ff::codec::Parameters),
    /// The one shared AAC encoder.
    Encoder(&'a ff::encoder::Audio),
}

/// One muxer.
pub struct Out {
    pub octx: ff::format::context::Output,
    pub audio: bool,
    tbs: Vec<Rational>,
    pub path: PathBuf,
}

/// Video parameters of an output: an opened encoder or copied parameters.
pub enum VideoSource<'a> {
    Encoder(&'a ff::encoder::Video),
    Copy(ff::codec::Parameters),
}

impl Out {
    /// Opens `path` with `format`, adds video (stream 0) and audio (stream
    /// 1, if any) and writes the header with `opts`.
    pub fn open(
        path: &Path,
        format: &str,
        video: VideoSource,
        audio: &AudioSource,
        opts: &[(&str, String)],
    ) -> Result<Out, MediaError> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| MediaError::internal("output dir", e))?;
        }
        let mut octx = ff::format::output_as(&path, format)
            .map_err(|e| MediaError::internal("open output", e))?;
        {
            let mut st = octx
                .add_stream(ff::encoder::find(ff::codec::Id::None))
                .map_err(|e| MediaError::internal("stream", e))?;
            match &video {
                VideoSource::Encoder(e) => st.set_parameters(*e),
                VideoSource::Copy(p) => st.set_parameters(p.clone()),
            }
            // SAFETY: parameters of a stream we just added.
            unsafe { (*st.parameters().as_mut_ptr()).codec_tag = 0 };
        }
        let has_audio = !matches!(audio, AudioSource::None);
        if has_audio {
            let mut st = octx
                .add_stream(ff::encoder::find(ff::codec::Id::None))
                .map_err(|e| MediaError::internal("stream", e))?;
            match audio {
                AudioSource::Copy(p) => st.set_parameters(p.clone()),
                AudioSource::Encoder(e) => st.set_parameters(*e),
                AudioSource::None => {}
            }
            // SAFETY: as above.
            unsafe { (*st.parameters().as_mut_ptr()).codec_tag = 0 };
        }
        octx.write_header_with(dict(opts))
            .map_err(|e| MediaError::internal(&format!("header of {}", path.display()), e))?;
        let tbs = octx.streams().map(|s| s.time_base()).collect();
        Ok(Out {
            octx,
            audio: has_audio,
            tbs,
            path: path.to_path_buf(),
        })
    }

    /// Opens an M4A-like output holding only `audio` as stream 0.
    pub fn open_audio_only(
        path: &Path,
        audio: &AudioSource,
        opts: &[(&str, String)],
    ) -> Result<Out, MediaError> {
        let mut octx = ff::format::output_as(&path, "mp4")
            .map_err(|e| MediaError::internal("open output", e))?;
        {
            let mut st = octx
                .add_stream(ff::encoder::find(ff::codec::Id::None))
                .map_err(|e| MediaError::internal("stream", e))?;
            match audio {
                AudioSource::Copy(p) => st.set_parameters(p.clone()),
                AudioSource::Encoder(e) => st.set_parameters(*e),
                AudioSource::None => return Err(MediaError::internal("output", "no audio")),
            }
            // SAFETY: parameters of a stream we just added.
            unsafe { (*st.parameters().as_mut_ptr()).codec_tag = 0 };
        }
        octx.write_header_with(dict(opts))
            .map_err(|e| MediaError::internal(&format!("header of {}", path.display()), e))?;
        let tbs = octx.streams().map(|s| s.time_base()).collect();
        Ok(Out {
            octx,
            audio: false,
            tbs,
            path: path.to_path_buf(),
        })
    }

    /// Writes a copy of `p` (timestamps in `tb`) to stream `stream`.
    pub fn write(&mut self, stream: usize, tb: Rational, p: &ff::Packet) -> Result<(), MediaError> {
        if stream == 1 && !self.audio {
            return Ok(());
        }
        let mut q = p.clone();
        q.set_stream(stream);
        q.rescale_ts(tb, self.tbs[stream]);
        q.set_position(-1);
        q.write_interleaved(&mut self.octx)
            .map_err(|e| MediaError::internal(&format!("write {}", self.path.display()), e))
    }

    pub fn finish(&mut self) -> Result<(), MediaError> {
        self.octx
            .write_trailer()
            .map_err(|e| MediaError::internal(&format!("trailer of {}", self.path.display()), e))
    }
}

/// MP4 muxer options: index at the front for progressive playback.
pub fn mp4_opts() -> Vec<(&'static str, String)> {
    vec![("movflags", "+faststart".into())]
}

/// HLS muxer options for a rendition directory.
pub fn hls_opts(dir: &Path, segment_seconds: u32) -> Vec<(&'static str, String)> {
    vec![
        ("hls_time", segment_seconds.to_string()),
        ("hls_playlist_type", "event".into()),
        ("hls_segment_type", "mpegts".into()),
        ("hls_flags", "independent_segments+temp_file".into()),
        (
            "hls_segment_filename",
            dir.join("seg_%05d.ts").display().to_string(),
        ),
    ]
}

/// The name of HLS segment `n`.
pub fn segment_name(n: u32) -> String {
    format!("seg_{n:05}.ts")
}

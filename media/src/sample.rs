//! Generates real media files for tests and benchmarks: moving test
//! patterns (optionally with sensor-like noise) and a tone, encoded with
//! real encoders into real containers, optionally tagged with a phone's
//! rotation. `SampleSpec::standard()` is the benchmark's standard input:
//! 60 s of 1080p30 H.264/AAC.

use std::path::Path;

use ff::Rational;
use ffmpeg_next as ff;

use crate::enc;
use crate::error::MediaError;

/// Video codec of a generated file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoCodec {
    H264,
    /// Lossless FFV1 (an accepted container, an unaccepted codec).
    Ffv1,
    None,
}

/// Audio codec of a generated file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioCodec {
    Aac,
    Opus,
    Pcm,
    None,
}

/// What to generate. The container follows the file extension.
#[derive(Debug, Clone)]
pub struct SampleSpec {
    pub seconds: f32,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub video: VideoCodec,
    pub audio: AudioCodec,
    /// Clockwise rotation written as a display matrix (0 = none).
    pub rotation: u32,
    /// Temporal noise strength 0..=100 (phone-sensor-like content).
    pub noise: u8,
    pub crf: u8,
    pub preset: &'static str,
    /// Keyframe interval in seconds.
    pub gop_seconds: f32,
    /// H.264: let keyframes after the first be open-GOP recovery points
    /// (non-IDR I pictures that B-frames before them reference across),
    /// as FFmpeg's libx264 wrapper makes by default. Phones write closed
    /// GOPs (every keyframe an IDR), and so does `sample` unless asked.
    pub open_gop: bool,
    /// Audio tone volume in dB (for loudness tests).
    pub volume_db: f32,
    /// Cap of the video bitrate (phones record at a roughly fixed rate).
    pub maxrate_kbps: Option<u32>,
}

impl SampleSpec {
    /// The benchmark's standard upload: 60 s 1080p30 H.264/AAC, 1 s GOP,
    /// with noise so the encoders have real work to do.
    pub fn standard() -> SampleSpec {
        SampleSpec {
            seconds: 60.0,
            width: 1920,
            height: 1080,
            fps: 30,
            video: VideoCodec::H264,
            audio: AudioCodec::Aac,
            rotation: 0,
            noise: 8,
            crf: 23,
            preset: "veryfast",
            gop_seconds: 1.0,
            open_gop: false,
            volume_db: -20.0,
            maxrate_kbps: Some(8_000),
        }
    }

    /// A small clip for tests.
    pub fn small(seconds: f32, width: u32, height: u32) -> SampleSpec {
        SampleSpec {
            seconds,
            width,
            height,
            fps: 30,
            noise: 0,
            preset: "ultrafast",
            ..SampleSpec::standard()
        }
    }
}

enum Enc {
    V(ff::encoder::Video),
    A(ff::encoder::Audio),
}

/// Writes a file as `spec` says.
pub fn generate(path: &Path, spec: &SampleSpec) -> Result<(), MediaError> {
    crate::init();
    let mut octx = ff::format::output(&path).map_err(|e| MediaError::internal("output", e))?;
    let global = octx
        .format()
        .flags()
        .contains(ff::format::Flags::GLOBAL_HEADER);
    let fps = spec.fps.max(1);
    let mut streams: Vec<(Enc, ff::filter::Graph, Rational)> = Vec::new();
    if spec.video != VideoCodec::None {
        let noise = if spec.noise > 0 {
            format!(",noise=alls={}:allf=t+u", spec.noise)
        } else {
            String::new()
        };
        let g = enc::graph(
            &[],
            &[("out", "buffersink")],
            &format!(
                "testsrc2=size={}x{}:rate={fps}:duration={}{noise},format=yuv420p",
                spec.width, spec.height, spec.seconds
            ),
        )?;
        let tb = Rational(1, fps as i32);
        let gop = ((spec.gop_seconds * fps as f32).round() as u32).max(1);
        let e = match spec.video {
            VideoCodec::H264 => enc::h264(
                spec.width,
                spec.height,
                Rational(fps as i32, 1),
                tb,
                global,
                &[
                    ("preset", spec.preset.to_string()),
                    ("crf", spec.crf.to_string()),
                    ("g", gop.to_string()),
                    ("keyint_min", gop.to_string()),
                    ("sc_threshold", "0".into()),
                    (
                        "x264-params",
                        format!("open-gop={}", u8::from(spec.open_gop)),
                    ),
                    ("maxrate", format!("{}k", spec.maxrate_kbps.unwrap_or(0))),
                    (
                        "bufsize",
                        format!("{}k", spec.maxrate_kbps.unwrap_or(0) * 2),
                    ),
                ],
            )?,
            _ => {
                let codec = ff::encoder::find(ff::codec::Id::FFV1)
                    .ok_or_else(|| MediaError::internal("ffv1", "missing"))?;
                let mut e = ff::codec::context::Context::new_with_codec(codec)
                    .encoder()
                    .video()
                    .map_err(|e| MediaError::internal("ffv1", e))?;
                e.set_width(spec.width);
                e.set_height(spec.height);
                e.set_format(ff::format::Pixel::YUV420P);
                e.set_time_base(tb);
                e.set_frame_rate(Some(Rational(fps as i32, 1)));
                if global {
                    e.set_flags(ff::codec::Flags::GLOBAL_HEADER);
                }
                e.open().map_err(|e| MediaError::internal("ffv1", e))?
            }
        };
        let mut st = octx
            .add_stream(ff::encoder::find(ff::codec::Id::None))
            .map_err(|e| MediaError::internal("stream", e))?;
        st.set_parameters(&e);
        st.set_time_base(tb);
        let idx = st.index();
        enc::set_rotation(&mut octx, idx, spec.rotation);
        streams.push((Enc::V(e), g, tb));
    }
    if spec.audio != AudioCodec::None {
        let (e, fmt) = match spec.audio {
            AudioCodec::Aac => (enc::aac(128_000, global)?, "fltp"),
            AudioCodec::Opus => (
                enc::audio_by_name(
                    "libopus",
                    ff::format::Sample::I16(ff::format::sample::Type::Packed),
                    global,
                )?,
                "s16",
            ),
            _ => (
                enc::audio_by_name(
                    "pcm_s16le",
                    ff::format::Sample::I16(ff::format::sample::Type::Packed),
                    global,
                )?,
                "s16",
            ),
        };
        let mut g = enc::graph(
            &[],
            &[("out", "abuffersink")],
            &format!(
                "sine=frequency=440:sample_rate=48000:duration={},volume={}dB,aformat=sample_fmts={fmt}:channel_layouts=stereo",
                spec.seconds, spec.volume_db
            ),
        )?;
        let fs = e.frame_size();
        if let Some(mut sink) = g.get("out") {
            sink.sink().set_frame_size(if fs > 0 { fs } else { 1024 });
        }
        let mut st = octx
            .add_stream(ff::encoder::find(ff::codec::Id::None))
            .map_err(|e| MediaError::internal("stream", e))?;
        st.set_parameters(&e);
        st.set_time_base(Rational(1, 48_000));
        streams.push((Enc::A(e), g, Rational(1, 48_000)));
    }
    octx.write_header()
        .map_err(|e| MediaError::internal("header", e))?;
    let out_tbs: Vec<Rational> = octx.streams().map(|s| s.time_base()).collect();

    // Interleave by time: always pull from the stream that is behind.
    let mut next_t = vec![0f64; streams.len()];
    let mut done = vec![false; streams.len()];
    while let Some(i) = (0..streams.len())
        .filter(|&i| !done[i])
        .min_by(|&a, &b| next_t[a].total_cmp(&next_t[b]))
    {
        let (e, g, tb) = &mut streams[i];
        let mut sink = g
            .get("out")
            .ok_or_else(|| MediaError::internal("graph", "sink"))?;
        let got = match e {
            Enc::V(v) => {
                let mut f = ff::frame::Video::empty();
                let ok = sink.sink().frame(&mut f).is_ok();
                if ok {
                    next_t[i] = f.pts().unwrap_or(0) as f64 / fps as f64;
                    v.send_frame(&f)
                        .map_err(|e| MediaError::internal("encode", e))?;
                }
                ok
            }
            Enc::A(a) => {
                let mut f = ff::frame::Audio::empty();
                let ok = sink.sink().frame(&mut f).is_ok();
                if ok {
                    next_t[i] = f.pts().unwrap_or(0) as f64 / 48_000.0;
                    a.send_frame(&f)
                        .map_err(|e| MediaError::internal("encode", e))?;
                }
                ok
            }
        };
        let encoder: &mut ff::encoder::Encoder = match e {
            Enc::V(v) => v,
            Enc::A(a) => a,
        };
        if !got {
            encoder
                .send_eof()
                .map_err(|e| MediaError::internal("encode", e))?;
            done[i] = true;
        }
        let enc_tb = *tb;
        let otb = out_tbs[i];
        enc::drain(encoder, |mut p| {
            p.set_stream(i);
            p.rescale_ts(enc_tb, otb);
            p.write_interleaved(&mut octx)
                .map_err(|e| MediaError::internal("write", e))
        })?;
    }
    octx.write_trailer()
        .map_err(|e| MediaError::internal("trailer", e))?;
    Ok(())
}

//! Validation before any work: the real container and codecs (never the
//! file name), duration, size, frame rate and the rotation a phone recorded,
//! a full demux pass that catches truncated files, and a trial decode that
//! catches corrupt ones. Every refusal carries a specific [`MediaErrorCode`].

use std::io::Read;
use std::path::Path;

use chalktalk_protocol::MediaKind;
use ff::codec::packet::side_data::Type as SideDataType;
use ff::media::Type as Medium;
use ffmpeg_next as ff;

use crate::error::{MediaError, MediaErrorCode as Code};
use crate::nal;
pub use crate::report::{AudioInfo, Limits, ProbeReport, VideoInfo};

const CONTAINERS: &[&str] = &[
    "mov,mp4,m4a,3gp,3g2,mj2",
    "matroska,webm",
    "avi",
    "mpegts",
    "wav",
    "ogg",
    "mp3",
    "aac",
    "flac",
];
const VIDEO_CODECS: &[&str] = &["h264", "hevc", "vp8", "vp9", "av1", "mpeg4"];
const AUDIO_CODECS: &[&str] = &[
    "aac",
    "opus",
    "vorbis",
    "mp3",
    "flac",
    "alac",
    "pcm_s16le",
    "pcm_s24le",
    "pcm_s32le",
    "pcm_f32le",
    "pcm_u8",
];

/// Probes and validates `path` as a `kind` upload.
pub fn probe(path: &Path, kind: MediaKind, limits: &Limits) -> Result<ProbeReport, MediaError> {
    crate::init();
    let magic = read_magic(path)?;
    if magic.is_empty() {
        return Err(MediaError::new(Code::Empty, "the file is empty"));
    }
    if let Some(image) = image_kind(&magic) {
        return Err(MediaError::new(
            Code::NotMedia,
            format!("this is a {image} image, not a recording"),
        ));
    }
    let mut ictx = match ff::format::input(&path) {
        Ok(c) => c,
        Err(e) if looks_like_container(&magic) => {
            return Err(MediaError::new(
                Code::Corrupt,
                format!("the file cannot be read ({e}); it may be damaged or incomplete"),
            ));
        }
        Err(_) => {
            return Err(MediaError::new(
                Code::NotMedia,
                "this is not an audio or video file",
            ));
        }
    };
    let format = ictx.format().name().to_string();
    if !CONTAINERS.contains(&format.as_str()) {
        let code = if format.contains("image") || format.ends_with("_pipe") || format == "tty" {
            Code::NotMedia
        } else {
            Code::UnsupportedCodec
        };
        return Err(MediaError::new(
            code,
            format!(
                "the container '{format}' is not accepted (MP4/MOV, WebM/MKV, AVI, MPEG-TS, WAV, Ogg, MP3, AAC, FLAC are)"
            ),
        ));
    }
    let declared_ms = if ictx.duration() > 0 {
        (ictx.duration() as u64) / 1000
    } else {
        0
    };
    if declared_ms > limits.max_duration_ms {
        return Err(MediaError::new(
            Code::TooLong,
            format!(
                "the recording is {} s long; the limit is {} s",
                declared_ms / 1000,
                limits.max_duration_ms / 1000
            ),
        ));
    }

    let video_stream = ictx
        .streams()
        .filter(|s| s.parameters().medium() == Medium::Video)
        .find(|s| {
            !s.disposition()
                .contains(ff::format::stream::Disposition::ATTACHED_PIC)
        })
        .map(|s| s.index());
    let audio_stream = ictx.streams().best(Medium::Audio).map(|s| s.index());
    match (kind, video_stream, audio_stream) {
        (MediaKind::Video, None, Some(_)) => {
            return Err(MediaError::new(
                Code::AudioOnly,
                "this file has sound but no picture; upload audio as a voice-over",
            ));
        }
        (MediaKind::Video, None, None) => {
            return Err(MediaError::new(
                Code::NotMedia,
                "this file has no video stream",
            ));
        }
        (MediaKind::VoiceOver, _, None) => {
            return Err(MediaError::new(
                Code::NoAudio,
                "a voice-over needs an audio track",
            ));
        }
        _ => {}
    }

    let mut video = match (kind, video_stream) {
        (MediaKind::Video, Some(i)) => Some(video_info(&ictx, i, limits)?),
        _ => None,
    };
    let mut audio = match audio_stream {
        Some(i) => Some(audio_info(&ictx, i)?),
        None => None,
    };

    let scan = demux_scan(
        &mut ictx,
        video.as_ref().map(|v| v.index),
        audio.as_ref().map(|a| a.index),
    )?;
    let duration_ms = declared_ms.max(scan.end_ms);
    if duration_ms > limits.max_duration_ms {
        return Err(MediaError::new(
            Code::TooLong,
            format!(
                "the recording is {} s long; the limit is {} s",
                duration_ms / 1000,
                limits.max_duration_ms / 1000
            ),
        ));
    }
    if declared_ms > 2000 && scan.end_ms + 500 < declared_ms * 9 / 10 {
        return Err(MediaError::new(
            Code::Truncated,
            format!(
                "the file stops at {:.1} s of {:.1} s: the upload or the recording was cut short",
                scan.end_ms as f64 / 1000.0,
                declared_ms as f64 / 1000.0
            ),
        ));
    }
    if let Some(v) = video.as_mut() {
        if scan.video_packets == 0 {
            return Err(MediaError::new(Code::Empty, "the video has no frames"));
        }
        v.frames = scan.video_packets;
        v.max_keyframe_gap_ms = scan.max_key_gap_ms;
        v.keyframes_not_idr = scan.keyframes_not_idr;
        if duration_ms > 0 {
            v.kbps = ((scan.video_bytes * 8) / duration_ms.max(1)) as u32;
        }
        if v.fps <= 0.0 && duration_ms > 0 {
            v.fps = scan.video_packets as f32 * 1000.0 / duration_ms as f32;
        }
    }
    if let Some(a) = audio.as_mut() {
        if scan.audio_packets == 0 && video.is_none() {
            return Err(MediaError::new(Code::Empty, "the recording has no sound"));
        }
        if duration_ms > 0 {
            a.kbps = ((scan.audio_bytes * 8) / duration_ms.max(1)) as u32;
        }
    }
    trial_decode(
        path,
        video.as_ref().map(|v| v.index),
        audio.as_ref().map(|a| a.index),
    )?;
    Ok(ProbeReport {
        format,
        duration_ms,
        video,
        audio,
    })
}

fn read_magic(path: &Path) -> Result<Vec<u8>, MediaError> {
    let mut f =
        std::fs::File::open(path).map_err(|e| MediaError::internal("cannot open the upload", e))?;
    let mut buf = vec![0u8; 16];
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) => return Err(MediaError::internal("cannot read the upload", e)),
        }
    }
    buf.truncate(n);
    Ok(buf)
}

fn image_kind(magic: &[u8]) -> Option<&'static str> {
    if magic.starts_with(b"\x89PNG") {
        Some("PNG")
    } else if magic.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("JPEG")
    } else if magic.starts_with(b"GIF8") {
        Some("GIF")
    } else if magic.len() >= 12 && &magic[0..4] == b"RIFF" && &magic[8..12] == b"WEBP" {
        Some("WebP")
    } else {
        None
    }
}

fn looks_like_container(magic: &[u8]) -> bool {
    (magic.len() >= 8
        && matches!(
            &magic[4..8],
            b"ftyp" | b"moov" | b"mdat" | b"free" | b"wide"
        ))
        || magic.starts_with(&[0x1A, 0x45, 0xDF, 0xA3])
        || magic.starts_with(b"RIFF")
        || magic.starts_with(b"OggS")
        || magic.starts_with(b"fLaC")
        || magic.starts_with(b"ID3")
}

fn video_info(
    ictx: &ff::format::context::Input,
    index: usize,
    limits: &Limits,
) -> Result<VideoInfo, MediaError> {
    let stream = ictx
        .stream(index)
        .ok_or_else(|| MediaError::new(Code::Corrupt, "the video stream vanished"))?;
    let params = stream.parameters();
    let codec = params.id().name().to_string();
    if !VIDEO_CODECS.contains(&codec.as_str()) {
        return Err(MediaError::new(
            Code::UnsupportedCodec,
            format!(
                "the video codec '{codec}' is not accepted (H.264, HEVC, VP8, VP9, AV1, MPEG-4 are)"
            ),
        ));
    }
    if ff::decoder::find(params.id()).is_none() {
        return Err(MediaError::new(
            Code::UnsupportedCodec,
            format!("no decoder for '{codec}' on this server"),
        ));
    }
    let ctx = ff::codec::context::Context::from_parameters(params)
        .map_err(|e| MediaError::new(Code::Corrupt, format!("bad video parameters: {e}")))?;
    let dec = ctx
        .decoder()
        .video()
        .map_err(|e| MediaError::new(Code::Corrupt, format!("bad video parameters: {e}")))?;
    let (width, height) = (dec.width(), dec.height());
    if width == 0 || height == 0 {
        return Err(MediaError::new(
            Code::Corrupt,
            "the video has no picture size",
        ));
    }
    let (long, short) = (width.max(height), width.min(height));
    if long > limits.max_long_side || short > limits.max_short_side {
        return Err(MediaError::new(
            Code::TooLargeDimensions,
            format!(
                "the video is {width}x{height}; the limit is {}x{}",
                limits.max_long_side, limits.max_short_side
            ),
        ));
    }
    let rate = {
        let r = stream.rate();
        if r.numerator() > 0 && r.denominator() > 0 {
            r
        } else {
            stream.avg_frame_rate()
        }
    };
    let fps = if rate.numerator() > 0 && rate.denominator() > 0 {
        rate.numerator() as f32 / rate.denominator() as f32
    } else {
        0.0
    };
    if fps > 240.0 {
        return Err(MediaError::new(
            Code::UnsupportedCodec,
            format!("{fps:.0} frames per second is more than the 240 accepted"),
        ));
    }
    let rotation = rotation_of(&stream);
    let (display_width, display_height) = if rotation % 180 == 90 {
        (height, width)
    } else {
        (width, height)
    };
    let pix_fmt = format!("{:?}", dec.format()).to_lowercase();
    Ok(VideoInfo {
        index,
        codec,
        width,
        height,
        display_width,
        display_height,
        fps,
        rotation,
        pix_fmt,
        kbps: 0,
        frames: 0,
        max_keyframe_gap_ms: 0,
        keyframes_not_idr: 0,
    })
}

/// Clockwise rotation from the display matrix (or the old `rotate` tag).
pub fn rotation_of(stream: &ff::format::stream::Stream) -> u32 {
    for sd in stream.side_data() {
        if sd.kind() == SideDataType::DisplayMatrix && sd.data().len() >= 36 {
            let mut m = [0i32; 9];
            for (i, c) in sd.data().chunks_exact(4).take(9).enumerate() {
                m[i] = i32::from_ne_bytes([c[0], c[1], c[2], c[3]]);
            }
            // SAFETY: `m` is a valid 3x3 display matrix of 9 i32.
            let ccw = unsafe { ff::ffi::av_display_rotation_get(m.as_ptr()) };
            if ccw.is_finite() {
                return snap_rotation(-ccw);
            }
        }
    }
    stream
        .metadata()
        .get("rotate")
        .and_then(|r| r.parse::<f64>().ok())
        .map(snap_rotation)
        .unwrap_or(0)
}

fn snap_rotation(cw: f64) -> u32 {
    let q = (cw / 90.0).round() as i64;
    (q.rem_euclid(4) * 90) as u32
}

fn audio_info(ictx: &ff::format::context::Input, index: usize) -> Result<AudioInfo, MediaError> {
    let stream = ictx
        .stream(index)
        .ok_or_else(|| MediaError::new(Code::Corrupt, "the audio stream vanished"))?;
    let params = stream.parameters();
    let codec = params.id().name().to_string();
    if !AUDIO_CODECS.contains(&codec.as_str()) {
        return Err(MediaError::new(
            Code::UnsupportedCodec,
            format!(
                "the audio codec '{codec}' is not accepted (AAC, Opus, Vorbis, MP3, FLAC, ALAC, PCM are)"
            ),
        ));
    }
    let dec = ff::codec::context::Context::from_parameters(params)
        .and_then(|c| c.decoder().audio())
        .map_err(|e| MediaError::new(Code::Corrupt, format!("bad audio parameters: {e}")))?;
    Ok(AudioInfo {
        index,
        codec,
        sample_rate: dec.rate(),
        channels: dec.channels(),
        kbps: 0,
    })
}

struct Scan {
    end_ms: u64,
    video_packets: u64,
    audio_packets: u64,
    video_bytes: u64,
    audio_bytes: u64,
    max_key_gap_ms: u64,
    /// H.264 keyframes without an IDR picture (see `nal`).
    keyframes_not_idr: u64,
}

/// Reads every packet (no decoding): finds where the data really ends.
fn demux_scan(
    ictx: &mut ff::format::context::Input,
    video: Option<usize>,
    audio: Option<usize>,
) -> Result<Scan, MediaError> {
    let tb = |i: usize| {
        ictx.stream(i)
            .map(|s| s.time_base())
            .unwrap_or(ff::Rational(1, 1000))
    };
    let (vtb, atb) = (video.map(tb), audio.map(tb));
    let ms = |ts: i64, r: ff::Rational| -> i64 {
        if r.denominator() == 0 {
            0
        } else {
            ts.saturating_mul(1000 * r.numerator() as i64) / r.denominator() as i64
        }
    };
    let mut s = Scan {
        end_ms: 0,
        video_packets: 0,
        audio_packets: 0,
        video_bytes: 0,
        audio_bytes: 0,
        max_key_gap_ms: 0,
        keyframes_not_idr: 0,
    };
    // H.264 only: how its packets frame NAL units (from the avcC record).
    let h264 = video.and_then(|i| ictx.stream(i)).and_then(|st| {
        let p = st.parameters();
        (p.id() == ff::codec::Id::H264).then(|| {
            // SAFETY: reading the extradata pointer and size of live
            // stream parameters; the slice does not outlive `p`.
            let extra = unsafe {
                let raw = p.as_ptr();
                if (*raw).extradata.is_null() || (*raw).extradata_size <= 0 {
                    &[][..]
                } else {
                    std::slice::from_raw_parts((*raw).extradata, (*raw).extradata_size as usize)
                }
            };
            nal::framing(extra)
        })
    });
    let mut last_key: Option<i64> = None;
    let mut errors = 0;
    let mut packet = ff::Packet::empty();
    loop {
        match packet.read(ictx) {
            Ok(()) => {}
            Err(ff::Error::Eof) => break,
            Err(e) => {
                errors += 1;
                if errors > 64 {
                    return Err(MediaError::new(
                        Code::Corrupt,
                        format!(
                            "the file cannot be read past {:.1} s: {e}",
                            s.end_ms as f64 / 1000.0
                        ),
                    ));
                }
                continue;
            }
        }
        let i = packet.stream();
        let Some(pts) = packet.pts().or(packet.dts()) else {
            continue;
        };
        if Some(i) == video {
            let r = vtb.unwrap_or(ff::Rational(1, 1000));
            s.video_packets += 1;
            s.video_bytes += packet.size() as u64;
            let end = ms(pts + packet.duration().max(0), r).max(0) as u64;
            s.end_ms = s.end_ms.max(end);
            if packet.is_key() {
                if let (Some(f), Some(data)) = (h264, packet.data())
                    && !nal::has_idr(data, f)
                {
                    s.keyframes_not_idr += 1;
                }
                let t = ms(pts, r);
                if let Some(prev) = last_key {
                    s.max_key_gap_ms = s.max_key_gap_ms.max((t - prev).unsigned_abs());
                }
                last_key = Some(t);
            }
        } else if Some(i) == audio {
            let r = atb.unwrap_or(ff::Rational(1, 1000));
            s.audio_packets += 1;
            s.audio_bytes += packet.size() as u64;
            let end = ms(pts + packet.duration().max(0), r).max(0) as u64;
            s.end_ms = s.end_ms.max(end);
        }
    }
    if let (Some(k), Some(v)) = (last_key, video.map(|_| s.end_ms as i64)) {
        s.max_key_gap_ms = s.max_key_gap_ms.max((v - k).unsigned_abs());
    }
    Ok(s)
}

/// Decodes the first frames of each stream: a file whose streams cannot be
/// decoded is refused before it costs a transcode.
fn trial_decode(path: &Path, video: Option<usize>, audio: Option<usize>) -> Result<(), MediaError> {
    let mut ictx = ff::format::input(&path)
        .map_err(|e| MediaError::new(Code::Corrupt, format!("cannot reopen: {e}")))?;
    let params = |i: usize| -> Result<ff::codec::context::Context, MediaError> {
        let st = ictx
            .stream(i)
            .ok_or_else(|| MediaError::new(Code::Corrupt, "stream vanished"))?;
        ff::codec::context::Context::from_parameters(st.parameters())
            .map_err(|e| MediaError::new(Code::Corrupt, format!("bad stream parameters: {e}")))
    };
    let bad =
        |e: ff::Error| MediaError::new(Code::Corrupt, format!("cannot open the decoder: {e}"));
    let mut vdec = match video {
        Some(i) => Some(params(i)?.decoder().video().map_err(bad)?),
        None => None,
    };
    let mut adec = match audio {
        Some(i) => Some(params(i)?.decoder().audio().map_err(bad)?),
        None => None,
    };
    let (mut vframes, mut aframes, mut vfail, mut afail, mut seen) = (0u32, 0u32, 0u32, 0u32, 0u32);
    let mut vf = ff::frame::Video::empty();
    let mut af = ff::frame::Audio::empty();
    let mut packet = ff::Packet::empty();
    while seen < 400 && (vdec.is_some() && vframes < 3 || adec.is_some() && aframes < 3) {
        match packet.read(&mut ictx) {
            Ok(()) => {}
            Err(ff::Error::Eof) => break,
            Err(_) => continue,
        }
        seen += 1;
        let i = packet.stream();
        if Some(i) == video
            && let Some(d) = vdec.as_mut()
        {
            if d.send_packet(&packet).is_err() {
                vfail += 1;
            }
            while d.receive_frame(&mut vf).is_ok() {
                vframes += 1;
            }
        } else if Some(i) == audio
            && let Some(d) = adec.as_mut()
        {
            if d.send_packet(&packet).is_err() {
                afail += 1;
            }
            while d.receive_frame(&mut af).is_ok() {
                aframes += 1;
            }
        }
    }
    if let Some(d) = vdec.as_mut()
        && vframes == 0
    {
        let _ = d.send_eof();
        while d.receive_frame(&mut vf).is_ok() {
            vframes += 1;
        }
    }
    if vdec.is_some() && vframes == 0 {
        return Err(MediaError::new(
            Code::Corrupt,
            format!("no video frame could be decoded ({vfail} bad packets)"),
        ));
    }
    if adec.is_some() && aframes == 0 && afail > 0 {
        return Err(MediaError::new(
            Code::Corrupt,
            format!("no audio could be decoded ({afail} bad packets)"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::{AudioCodec, SampleSpec, VideoCodec, generate};

    fn clip(dir: &Path, name: &str, spec: SampleSpec) -> std::path::PathBuf {
        let p = dir.join(name);
        generate(&p, &spec).expect("generate");
        p
    }

    fn code(r: Result<ProbeReport, MediaError>) -> Code {
        r.expect_err("should be refused").code
    }

    #[test]
    fn accepts_a_real_clip_and_reads_its_facts() {
        let d = tempfile::tempdir().unwrap();
        let p = clip(d.path(), "a.mp4", SampleSpec::small(3.0, 320, 240));
        let r = probe(&p, MediaKind::Video, &Limits::default()).unwrap();
        let v = r.video.unwrap();
        assert_eq!((v.width, v.height, v.rotation), (320, 240, 0));
        assert_eq!(v.codec, "h264");
        assert!((v.fps - 30.0).abs() < 0.01, "{}", v.fps);
        assert!((2900..=3100).contains(&r.duration_ms), "{}", r.duration_ms);
        assert_eq!(v.frames, 90);
        assert!(v.max_keyframe_gap_ms <= 1100, "{}", v.max_keyframe_gap_ms);
        assert_eq!(r.audio.unwrap().codec, "aac");
    }

    #[test]
    fn reads_phone_rotation() {
        let d = tempfile::tempdir().unwrap();
        for rot in [90, 180, 270] {
            let p = clip(
                d.path(),
                &format!("r{rot}.mp4"),
                SampleSpec {
                    rotation: rot,
                    ..SampleSpec::small(1.0, 320, 240)
                },
            );
            let v = probe(&p, MediaKind::Video, &Limits::default())
                .unwrap()
                .video
                .unwrap();
            assert_eq!(v.rotation, rot);
            let want = if rot == 180 { (320, 240) } else { (240, 320) };
            assert_eq!((v.display_width, v.display_height), want);
        }
    }

    #[test]
    fn refuses_each_kind_of_bad_file_with_its_code() {
        let d = tempfile::tempdir().unwrap();
        let lim = Limits::default();
        let text = d.path().join("notes.mp4");
        std::fs::write(
            &text,
            b"this is not a video, whatever the name says\n".repeat(50),
        )
        .unwrap();
        assert_eq!(code(probe(&text, MediaKind::Video, &lim)), Code::NotMedia);
        let empty = d.path().join("empty.mp4");
        std::fs::write(&empty, b"").unwrap();
        assert_eq!(code(probe(&empty, MediaKind::Video, &lim)), Code::Empty);
        let png = d.path().join("x.mp4");
        std::fs::write(&png, b"\x89PNG\r\n\x1a\n0000000000000000").unwrap();
        assert_eq!(code(probe(&png, MediaKind::Video, &lim)), Code::NotMedia);

        let audio = clip(
            d.path(),
            "voice.m4a",
            SampleSpec {
                video: VideoCodec::None,
                ..SampleSpec::small(2.0, 0, 0)
            },
        );
        assert_eq!(code(probe(&audio, MediaKind::Video, &lim)), Code::AudioOnly);
        assert!(probe(&audio, MediaKind::VoiceOver, &lim).is_ok());
        let silent = clip(
            d.path(),
            "silent.mp4",
            SampleSpec {
                audio: AudioCodec::None,
                ..SampleSpec::small(1.0, 160, 120)
            },
        );
        assert_eq!(
            code(probe(&silent, MediaKind::VoiceOver, &lim)),
            Code::NoAudio
        );

        let ffv1 = clip(
            d.path(),
            "lossless.mkv",
            SampleSpec {
                video: VideoCodec::Ffv1,
                audio: AudioCodec::None,
                ..SampleSpec::small(1.0, 160, 120)
            },
        );
        assert_eq!(
            code(probe(&ffv1, MediaKind::Video, &lim)),
            Code::UnsupportedCodec
        );

        let good = clip(d.path(), "good.mp4", SampleSpec::small(6.0, 320, 240));
        let bytes = std::fs::read(&good).unwrap();
        // moov at the end (no faststart): cutting the file loses the index.
        let cut = d.path().join("cut.mp4");
        std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
        let c = code(probe(&cut, MediaKind::Video, &lim));
        assert!(c == Code::Corrupt || c == Code::Truncated, "{c:?}");
        let mut garbled = bytes.clone();
        for b in garbled.iter_mut().skip(48).take(bytes.len() - 96) {
            *b = 0x5A;
        }
        let bad = d.path().join("garbled.mp4");
        std::fs::write(&bad, &garbled).unwrap();
        let c = code(probe(&bad, MediaKind::Video, &lim));
        assert!(c == Code::Corrupt || c == Code::NotMedia, "{c:?}");

        let small = Limits {
            max_long_side: 200,
            max_short_side: 200,
            ..Limits::default()
        };
        assert_eq!(
            code(probe(&good, MediaKind::Video, &small)),
            Code::TooLargeDimensions
        );
        let short = Limits {
            max_duration_ms: 2000,
            ..Limits::default()
        };
        assert_eq!(code(probe(&good, MediaKind::Video, &short)), Code::TooLong);
    }

    #[test]
    fn accepts_voice_over_formats() {
        let d = tempfile::tempdir().unwrap();
        let lim = Limits::default();
        for (name, a) in [
            ("v.webm", AudioCodec::Opus),
            ("v.wav", AudioCodec::Pcm),
            ("v.m4a", AudioCodec::Aac),
        ] {
            let p = clip(
                d.path(),
                name,
                SampleSpec {
                    video: VideoCodec::None,
                    audio: a,
                    ..SampleSpec::small(2.0, 0, 0)
                },
            );
            let r = probe(&p, MediaKind::VoiceOver, &lim).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(r.audio.is_some());
            assert!(
                (1900..=2200).contains(&r.duration_ms),
                "{name}: {}",
                r.duration_ms
            );
        }
    }
}

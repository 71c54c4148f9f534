//! Voice-overs: a coach's recording (WebM/Opus, M4A/AAC, WAV...) is decoded,
//! loudness-normalised to -16 LUFS (EBU R128 `loudnorm`, true peak -1.5
//! dBTP), resampled to 48 kHz stereo and encoded to AAC in an M4A with the
//! index at the front; the result's integrated loudness is measured back.

use std::path::Path;
use std::time::Instant;

use chalktalk_protocol::MediaInfo;
use ff::Rational;
use ffmpeg_next as ff;

use crate::enc;
use crate::error::{MediaError, MediaErrorCode};
use crate::outputs::{self, AudioSource, Out};
use crate::probe::ProbeReport;

/// Target integrated loudness, LUFS.
pub const TARGET_LUFS: f32 = -16.0;

fn decoder_graph(
    ictx: &ff::format::context::Input,
    index: usize,
    chain: &str,
) -> Result<(ff::decoder::Audio, ff::filter::Graph, Rational), MediaError> {
    let st = ictx
        .stream(index)
        .ok_or_else(|| MediaError::new(MediaErrorCode::Corrupt, "audio stream missing"))?;
    let tb = st.time_base();
    let d = ff::codec::context::Context::from_parameters(st.parameters())
        .and_then(|c| c.decoder().audio())
        .map_err(|e| MediaError::new(MediaErrorCode::Corrupt, format!("audio decoder: {e}")))?;
    let layout = if d.channel_layout().bits() == 0 {
        ff::ChannelLayout::default(d.channels() as i32)
    } else {
        d.channel_layout()
    };
    let args = format!(
        "time_base=1/{sr}:sample_rate={sr}:sample_fmt={}:channel_layout=0x{:x}",
        d.format().name(),
        layout.bits(),
        sr = d.rate()
    );
    let g = enc::graph(
        &[("ain", "abuffer", &args)],
        &[("aout", "abuffersink")],
        &format!("[ain]{chain}[aout]"),
    )?;
    Ok((d, g, tb))
}

/// Runs every decoded frame of stream `index` through `g`, handing each
/// filtered frame to `each`.
fn run(
    ictx: &mut ff::format::context::Input,
    index: usize,
    d: &mut ff::decoder::Audio,
    g: &mut ff::filter::Graph,
    tb: Rational,
    each: &mut dyn FnMut(&ff::frame::Audio) -> Result<(), MediaError>,
) -> Result<u64, MediaError> {
    let rate = d.rate() as i64;
    let mut f = ff::frame::Audio::empty();
    let mut out = ff::frame::Audio::empty();
    let mut samples = 0u64;
    let mut feed = |f: &mut ff::frame::Audio,
                    g: &mut ff::filter::Graph,
                    samples: &mut u64|
     -> Result<(), MediaError> {
        let ts = f.timestamp();
        f.set_pts(ts.map(|t| t * tb.numerator() as i64 * rate / tb.denominator().max(1) as i64));
        *samples += f.samples() as u64;
        g.get("ain")
            .ok_or_else(|| MediaError::internal("graph", "abuffer"))?
            .source()
            .add(f)
            .map_err(|e| MediaError::internal("audio filter", e))?;
        let mut sink = g
            .get("aout")
            .ok_or_else(|| MediaError::internal("graph", "abuffersink"))?;
        while sink.sink().frame(&mut out).is_ok() {
            each(&out)?;
        }
        Ok(())
    };
    let mut packet = ff::Packet::empty();
    loop {
        match packet.read(ictx) {
            Ok(()) => {}
            Err(ff::Error::Eof) => break,
            Err(_) => continue,
        }
        if packet.stream() != index || d.send_packet(&packet).is_err() {
            continue;
        }
        while d.receive_frame(&mut f).is_ok() {
            feed(&mut f, g, &mut samples)?;
        }
    }
    let _ = d.send_eof();
    while d.receive_frame(&mut f).is_ok() {
        feed(&mut f, g, &mut samples)?;
    }
    let _ = g.get("ain").map(|mut s| s.source().flush());
    let mut sink = g
        .get("aout")
        .ok_or_else(|| MediaError::internal("graph", "abuffersink"))?;
    while sink.sink().frame(&mut out).is_ok() {
        each(&out)?;
    }
    Ok(samples)
}

/// Normalises the voice-over at `input` into `out_dir/audio.m4a`.
pub fn normalise(
    input: &Path,
    out_dir: &Path,
    report: &ProbeReport,
    on_progress: &mut dyn FnMut(f32),
) -> Result<MediaInfo, MediaError> {
    crate::init();
    let started = Instant::now();
    let a = report
        .audio
        .as_ref()
        .ok_or_else(|| MediaError::new(MediaErrorCode::NoAudio, "no audio stream"))?;
    let mut ictx = ff::format::input(&input)
        .map_err(|e| MediaError::new(MediaErrorCode::Corrupt, format!("cannot open: {e}")))?;
    let chain = format!(
        "loudnorm=I={TARGET_LUFS}:TP=-1.5:LRA=11,aresample=48000,aformat=sample_fmts=fltp:sample_rates=48000:channel_layouts=stereo"
    );
    let (mut d, mut g, tb) = decoder_graph(&ictx, a.index, &chain)?;
    if let Some(mut s) = g.get("aout") {
        s.sink().set_frame_size(1024);
    }
    let mut e = enc::aac(128_000, true)?;
    std::fs::create_dir_all(out_dir).map_err(|e| MediaError::internal("output dir", e))?;
    let path = out_dir.join("audio.m4a");
    let mut out = Out::open_audio_only(&path, &AudioSource::Encoder(&e), &outputs::mp4_opts())?;
    let total = (report.duration_ms as f64 / 1000.0 * 48_000.0).max(1.0);
    let mut written = 0u64;
    let mut last = 0.0f32;
    let etb = Rational(1, 48_000);
    let mut each = |f: &ff::frame::Audio| -> Result<(), MediaError> {
        e.send_frame(f)
            .map_err(|e| MediaError::internal("encode audio", e))?;
        written += f.samples() as u64;
        let pct = ((written as f64 / total) * 90.0).min(90.0) as f32;
        if pct - last >= 5.0 {
            last = pct;
            on_progress(pct);
        }
        let ae: &mut ff::encoder::Encoder = &mut e;
        enc::drain(ae, |p| out.write(0, etb, &p))
    };
    let samples = run(&mut ictx, a.index, &mut d, &mut g, tb, &mut each)?;
    if samples == 0 {
        return Err(MediaError::new(
            MediaErrorCode::Empty,
            "the recording has no sound",
        ));
    }
    let _ = e.send_eof();
    let ae: &mut ff::encoder::Encoder = &mut e;
    enc::drain(ae, |p| out.write(0, etb, &p))?;
    out.finish()?;
    let lufs = measure_lufs(&path)?;
    tracing::debug!(
        secs = started.elapsed().as_secs_f64(),
        lufs,
        "voice-over normalised"
    );
    on_progress(100.0);
    Ok(MediaInfo {
        duration_ms: report.duration_ms,
        audio: Some("audio.m4a".into()),
        loudness_lufs: Some(lufs),
        ..MediaInfo::default()
    })
}

/// Integrated loudness of the first audio stream of `path`, LUFS (EBU R128).
pub fn measure_lufs(path: &Path) -> Result<f32, MediaError> {
    crate::init();
    let mut ictx = ff::format::input(&path)
        .map_err(|e| MediaError::new(MediaErrorCode::Corrupt, format!("cannot open: {e}")))?;
    let index = ictx
        .streams()
        .best(ff::media::Type::Audio)
        .map(|s| s.index())
        .ok_or_else(|| MediaError::new(MediaErrorCode::NoAudio, "no audio stream"))?;
    let (mut d, mut g, tb) = decoder_graph(&ictx, index, "ebur128=metadata=1")?;
    let mut lufs = None;
    run(&mut ictx, index, &mut d, &mut g, tb, &mut |f| {
        if let Some(v) = f
            .metadata()
            .get("lavfi.r128.I")
            .and_then(|v| v.parse::<f32>().ok())
        {
            lufs = Some(v);
        }
        Ok(())
    })?;
    lufs.ok_or_else(|| MediaError::new(MediaErrorCode::Empty, "too short to measure loudness"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::{Limits, probe};
    use crate::sample::{AudioCodec, SampleSpec, VideoCodec, generate};
    use chalktalk_protocol::MediaKind;

    #[test]
    fn quiet_and_loud_recordings_come_out_at_the_target() {
        let d = tempfile::tempdir().unwrap();
        for (name, codec, vol) in [
            ("quiet.webm", AudioCodec::Opus, -35.0),
            ("loud.wav", AudioCodec::Pcm, -3.0),
            ("phone.m4a", AudioCodec::Aac, -20.0),
        ] {
            let src = d.path().join(name);
            generate(
                &src,
                &SampleSpec {
                    video: VideoCodec::None,
                    audio: codec,
                    volume_db: vol,
                    ..SampleSpec::small(6.0, 0, 0)
                },
            )
            .unwrap();
            let before = measure_lufs(&src).unwrap();
            let report = probe(&src, MediaKind::VoiceOver, &Limits::default()).unwrap();
            let out = d.path().join(format!("out-{name}"));
            let info = normalise(&src, &out, &report, &mut |_| {}).unwrap();
            let after = info.loudness_lufs.unwrap();
            assert!(
                (after - TARGET_LUFS).abs() < 2.0,
                "{name}: {before} LUFS became {after}"
            );
            let r = probe(
                &out.join("audio.m4a"),
                MediaKind::VoiceOver,
                &Limits::default(),
            )
            .unwrap();
            let a = r.audio.unwrap();
            assert_eq!(
                (a.codec.as_str(), a.sample_rate, a.channels),
                ("aac", 48_000, 2)
            );
            assert!(
                (5800..=6300).contains(&r.duration_ms),
                "{name}: {}",
                r.duration_ms
            );
        }
    }
}

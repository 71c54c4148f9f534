//! The video pipeline. The source is decoded ONCE; one filter graph turns
//! the picture upright and splits it to every encoded rung and the proxy.
//! Each rung's packets go to its MP4 and its HLS rendition; a top rung that
//! the source already satisfies is packaged from the source's own packets,
//! and every encoded rung gets keyframes exactly where the copied rung has
//! them (or every segment length when nothing is copied), so all renditions
//! cut their segments at the same instants and switch cleanly. Audio is
//! copied (AAC) or encoded once and shared. The mobile rung's segments are
//! announced as they complete so it can be published first.

use std::collections::HashSet;
use std::path::Path;
use std::time::Instant;

use chalktalk_protocol::{MediaInfo, Rendition};
use ff::Rational;
use ffmpeg_next as ff;

use crate::enc;
use crate::error::{MediaError, MediaErrorCode};
use crate::hls;
use crate::jpeg::{self, Sprite};
use crate::ladder::{self, Plan, Rung};
use crate::outputs::{self, AudioSource, Out, VideoSource};
use crate::probe::ProbeReport;
pub use crate::report::{Event, Options, Timings};

struct RungState {
    rung: Rung,
    enc: Option<ff::encoder::Video>,
    enc_tb: Rational,
    mp4: Out,
    hls: Out,
    bytes: u64,
    last_bucket: Option<i64>,
}

/// Transcodes `input` into `out_dir`. Paths in the result are relative.
pub fn transcode(
    input: &Path,
    out_dir: &Path,
    report: &ProbeReport,
    opts: &Options,
    on_event: &mut dyn FnMut(Event),
) -> Result<(MediaInfo, Timings), MediaError> {
    crate::init();
    let started = Instant::now();
    let mut timings = Timings::default();
    let plan = ladder::plan(report, &opts.ladder)
        .ok_or_else(|| MediaError::new(MediaErrorCode::AudioOnly, "no video stream"))?;
    let v = report
        .video
        .as_ref()
        .ok_or_else(|| MediaError::new(MediaErrorCode::AudioOnly, "no video stream"))?;
    let mut ictx = ff::format::input(&input)
        .map_err(|e| MediaError::new(MediaErrorCode::Corrupt, format!("cannot open: {e}")))?;
    let vist = ictx
        .stream(v.index)
        .ok_or_else(|| MediaError::new(MediaErrorCode::Corrupt, "video stream missing"))?;
    let v_tb = vist.time_base();
    let v_params = vist.parameters();
    let frame_rate = {
        let r = vist.rate();
        if r.numerator() > 0 {
            r
        } else {
            Rational(30, 1)
        }
    };
    let mut vctx = ff::codec::context::Context::from_parameters(v_params.clone())
        .map_err(|e| MediaError::new(MediaErrorCode::Corrupt, e.to_string()))?;
    enc::threads(&mut vctx);
    let mut vdec = vctx
        .decoder()
        .video()
        .map_err(|e| MediaError::new(MediaErrorCode::Corrupt, format!("video decoder: {e}")))?;

    // Audio: copied or decoded + encoded once.
    let a_index = report.audio.as_ref().map(|a| a.index);
    let a_tb = a_index
        .and_then(|i| ictx.stream(i))
        .map(|s| s.time_base())
        .unwrap_or(Rational(1, 48_000));
    let a_params = a_index.and_then(|i| ictx.stream(i)).map(|s| s.parameters());
    let mut adec = None;
    let mut aenc = None;
    let mut agraph = None;
    if let (Some(params), false) = (a_params.clone(), plan.copy_audio) {
        let d = ff::codec::context::Context::from_parameters(params)
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
        let mut g = enc::graph(
            &[("ain", "abuffer", &args)],
            &[("aout", "abuffersink")],
            "[ain]aresample=48000,aformat=sample_fmts=fltp:sample_rates=48000:channel_layouts=stereo[aout]",
        )?;
        if let Some(mut s) = g.get("aout") {
            s.sink().set_frame_size(1024);
        }
        aenc = Some(enc::aac(opts.audio_kbps as usize * 1000, true)?);
        adec = Some(d);
        agraph = Some(g);
    }
    let audio_src = match (&a_params, plan.copy_audio, &aenc) {
        (Some(p), true, _) => AudioSource::Copy(p.clone()),
        (Some(_), false, Some(e)) => AudioSource::Encoder(e),
        _ => AudioSource::None,
    };
    let enc_audio_tb = Rational(1, 48_000);

    // One graph: upright → split → one scaled branch per encoded rung + proxy.
    let encoded: Vec<usize> = (0..plan.rungs.len())
        .filter(|&i| !plan.rungs[i].copy)
        .collect();
    let branches = encoded.len() + 1;
    let mut spec = format!(
        "[in]{}split={branches}",
        plan.upright.map(|u| format!("{u},")).unwrap_or_default()
    );
    for b in 0..branches {
        spec.push_str(&format!("[s{b}]"));
    }
    for (b, &i) in encoded.iter().enumerate() {
        let r = &plan.rungs[i];
        spec.push_str(&format!(
            ";[s{b}]scale={}:{}:flags=bicubic,format=yuv420p[v{b}]",
            r.width, r.height
        ));
    }
    let pb = encoded.len();
    spec.push_str(&format!(
        ";[s{pb}]scale={}:{}:flags=bilinear,format=yuv420p[v{pb}]",
        plan.proxy.0, plan.proxy.1
    ));
    let sar = vdec.aspect_ratio();
    let buffer_args = format!(
        "video_size={}x{}:pix_fmt={}:time_base={}/{}:pixel_aspect={}/{}:frame_rate={}/{}",
        vdec.width(),
        vdec.height(),
        ff::ffi::AVPixelFormat::from(vdec.format()) as i32,
        v_tb.numerator(),
        v_tb.denominator(),
        sar.numerator().max(1),
        sar.denominator().max(1),
        frame_rate.numerator(),
        frame_rate.denominator()
    );
    let sink_names: Vec<String> = (0..branches).map(|b| format!("v{b}")).collect();
    let outs: Vec<(&str, &str)> = sink_names
        .iter()
        .map(|n| (n.as_str(), "buffersink"))
        .collect();
    let mut graph = enc::graph(&[("in", "buffer", &buffer_args)], &outs, &spec)?;
    let sink_tb = graph
        .get("v0")
        .map(|mut c| c.sink().time_base())
        .unwrap_or(v_tb);

    // Rungs: encoders and outputs.
    let fps = frame_rate.numerator() as f32 / frame_rate.denominator().max(1) as f32;
    let mut rungs = Vec::new();
    for r in &plan.rungs {
        let (enc, enc_tb) = if r.copy {
            (None, v_tb)
        } else {
            let e = enc::h264(
                r.width,
                r.height,
                frame_rate,
                sink_tb,
                true,
                &[
                    ("preset", opts.preset.clone()),
                    ("crf", opts.crf.to_string()),
                    ("maxrate", format!("{}k", r.maxrate_kbps)),
                    ("bufsize", format!("{}k", r.maxrate_kbps * 2)),
                    ("g", ((fps * 10.0) as u32).max(1).to_string()),
                    ("sc_threshold", "0".into()),
                    ("forced-idr", "1".into()),
                    ("x264-params", "open-gop=0".into()),
                ],
            )?;
            (Some(e), sink_tb)
        };
        fn vsrc<'a>(
            e: &'a Option<ff::encoder::Video>,
            p: &ff::codec::Parameters,
        ) -> Result<VideoSource<'a>, MediaError> {
            Ok(match e {
                Some(e) => VideoSource::Encoder(e),
                None => VideoSource::Copy(p.clone()),
            })
        }
        let dir = out_dir.join("hls").join(&r.name);
        let mp4 = Out::open(
            &out_dir.join("mp4").join(format!("{}.mp4", r.name)),
            "mp4",
            vsrc(&enc, &v_params)?,
            &audio_src,
            &outputs::mp4_opts(),
        )?;
        let hls = Out::open(
            &dir.join("index.m3u8"),
            "hls",
            vsrc(&enc, &v_params)?,
            &audio_src,
            &outputs::hls_opts(&dir, opts.segment_seconds),
        )?;
        rungs.push(RungState {
            rung: r.clone(),
            enc,
            enc_tb,
            mp4,
            hls,
            bytes: 0,
            last_bucket: None,
        });
    }
    let mut proxy_enc = enc::h264(
        plan.proxy.0,
        plan.proxy.1,
        frame_rate,
        sink_tb,
        true,
        &[
            ("preset", opts.proxy_preset.clone()),
            ("crf", "28".into()),
            ("g", opts.proxy_gop.to_string()),
            ("bf", "0".into()),
            ("sc_threshold", "0".into()),
        ],
    )?;
    let mut proxy = Out::open(
        &out_dir.join("proxy.mp4"),
        "mp4",
        VideoSource::Encoder(&proxy_enc),
        &AudioSource::None,
        &outputs::mp4_opts(),
    )?;

    let mobile = rungs.len() - 1;
    let mobile_dir = out_dir.join("hls").join(&plan.rungs[mobile].name);
    let mut next_segment = 0u32;
    let mut sprite = Sprite::new(report.duration_ms, plan.thumb);
    let poster_ms = (report.duration_ms / 3).min(2000);
    let mut poster_done = false;
    let mut key_pts: HashSet<i64> = HashSet::new();
    let copying = plan.rungs[0].copy;
    let seg_ms = opts.segment_seconds.max(1) as i64 * 1000;
    let expected_frames = ((report.duration_ms as f64 / 1000.0) * fps as f64).max(1.0);
    let mut decoded = 0u64;
    let mut last_percent = -1.0f32;
    let to_ms = |pts: i64, tb: Rational| {
        pts * 1000 * tb.numerator() as i64 / tb.denominator().max(1) as i64
    };

    // Pulls every ready frame from the graph into the encoders.
    let has_audio = a_params.is_some();
    let pump = |graph: &mut ff::filter::Graph,
                rungs: &mut Vec<RungState>,
                proxy_enc: &mut ff::encoder::Video,
                proxy: &mut Out,
                key_pts: &HashSet<i64>,
                sprite: &mut Sprite,
                poster_done: &mut bool,
                next_segment: &mut u32,
                on_event: &mut dyn FnMut(Event)|
     -> Result<(), MediaError> {
        for (b, &i) in encoded.iter().enumerate() {
            let mut sink = graph
                .get(&sink_names[b])
                .ok_or_else(|| MediaError::internal("graph", "sink"))?;
            let mut f = ff::frame::Video::empty();
            while sink.sink().frame(&mut f).is_ok() {
                let pts = f.pts().unwrap_or(0);
                let rs = &mut rungs[i];
                let key = if copying {
                    key_pts.contains(&pts)
                } else {
                    let bucket = to_ms(pts, sink_tb).div_euclid(seg_ms);
                    let k = rs.last_bucket != Some(bucket);
                    rs.last_bucket = Some(bucket);
                    k
                };
                f.set_kind(if key {
                    ff::picture::Type::I
                } else {
                    ff::picture::Type::None
                });
                if b == 0 && !*poster_done && to_ms(pts, sink_tb) >= poster_ms as i64 {
                    jpeg::write_jpeg(&f, &out_dir.join("poster.jpg"))?;
                    *poster_done = true;
                }
                let e = rs
                    .enc
                    .as_mut()
                    .ok_or_else(|| MediaError::internal("rung", "no encoder"))?;
                e.send_frame(&f)
                    .map_err(|e| MediaError::internal("encode", e))?;
                drain_rung(rs)?;
                if i == mobile {
                    // The master playlist is on disk before the first
                    // segment is announced (and published with it).
                    if *next_segment == 0 && mobile_dir.join(outputs::segment_name(0)).exists() {
                        write_early_master(out_dir, rs, fps, has_audio)?;
                    }
                    announce(&mobile_dir, &rs.rung.name, next_segment, on_event);
                }
            }
        }
        let mut sink = graph
            .get(&sink_names[pb])
            .ok_or_else(|| MediaError::internal("graph", "sink"))?;
        let mut f = ff::frame::Video::empty();
        while sink.sink().frame(&mut f).is_ok() {
            let t = to_ms(f.pts().unwrap_or(0), sink_tb).max(0) as u64;
            sprite.offer(&f, t)?;
            f.set_kind(ff::picture::Type::None);
            proxy_enc
                .send_frame(&f)
                .map_err(|e| MediaError::internal("encode proxy", e))?;
            enc::drain(proxy_enc, |p| proxy.write(0, sink_tb, &p))?;
        }
        Ok(())
    };

    let mut packet = ff::Packet::empty();
    let mut vframe = ff::frame::Video::empty();
    let mut aframe = ff::frame::Audio::empty();
    loop {
        match packet.read(&mut ictx) {
            Ok(()) => {}
            Err(ff::Error::Eof) => break,
            Err(_) => continue,
        }
        let si = packet.stream();
        if si == v.index {
            if copying {
                let rs = &mut rungs[0];
                rs.bytes += packet.size() as u64;
                rs.mp4.write(0, v_tb, &packet)?;
                rs.hls.write(0, v_tb, &packet)?;
            }
            if vdec.send_packet(&packet).is_err() {
                continue;
            }
            while vdec.receive_frame(&mut vframe).is_ok() {
                decoded += 1;
                let pts = vframe.timestamp();
                vframe.set_pts(pts);
                if vframe.is_key()
                    && let Some(p) = pts
                {
                    key_pts.insert(p);
                }
                graph
                    .get("in")
                    .ok_or_else(|| MediaError::internal("graph", "source"))?
                    .source()
                    .add(&vframe)
                    .map_err(|e| MediaError::internal("filter", e))?;
                pump(
                    &mut graph,
                    &mut rungs,
                    &mut proxy_enc,
                    &mut proxy,
                    &key_pts,
                    &mut sprite,
                    &mut poster_done,
                    &mut next_segment,
                    on_event,
                )?;
                let pct = ((decoded as f64 / expected_frames) * 95.0).min(95.0) as f32;
                if pct - last_percent >= 1.0 {
                    last_percent = pct;
                    on_event(Event::Progress {
                        percent: pct.floor(),
                    });
                }
                if timings.first_segment_seconds == 0.0 && next_segment > 0 {
                    timings.first_segment_seconds = started.elapsed().as_secs_f64();
                }
            }
        } else if Some(si) == a_index {
            if plan.copy_audio {
                for rs in rungs.iter_mut() {
                    rs.mp4.write(1, a_tb, &packet)?;
                    rs.hls.write(1, a_tb, &packet)?;
                }
            } else if let (Some(d), Some(g), Some(e)) =
                (adec.as_mut(), agraph.as_mut(), aenc.as_mut())
            {
                if d.send_packet(&packet).is_err() {
                    continue;
                }
                while d.receive_frame(&mut aframe).is_ok() {
                    let ts = aframe.timestamp();
                    aframe.set_pts(ts.map(|t| {
                        t * a_tb.numerator() as i64 * d.rate() as i64
                            / a_tb.denominator().max(1) as i64
                    }));
                    g.get("ain")
                        .ok_or_else(|| MediaError::internal("graph", "abuffer"))?
                        .source()
                        .add(&aframe)
                        .map_err(|e| MediaError::internal("audio filter", e))?;
                    pump_audio(g, e, &mut rungs, enc_audio_tb)?;
                }
            }
        }
    }
    // Flush everything in order: decoder → graph → encoders → muxers.
    let _ = vdec.send_eof();
    while vdec.receive_frame(&mut vframe).is_ok() {
        let pts = vframe.timestamp();
        vframe.set_pts(pts);
        if vframe.is_key()
            && let Some(p) = pts
        {
            key_pts.insert(p);
        }
        graph
            .get("in")
            .ok_or_else(|| MediaError::internal("graph", "source"))?
            .source()
            .add(&vframe)
            .map_err(|e| MediaError::internal("filter", e))?;
        pump(
            &mut graph,
            &mut rungs,
            &mut proxy_enc,
            &mut proxy,
            &key_pts,
            &mut sprite,
            &mut poster_done,
            &mut next_segment,
            on_event,
        )?;
    }
    let _ = graph
        .get("in")
        .ok_or_else(|| MediaError::internal("graph", "source"))?
        .source()
        .flush();
    pump(
        &mut graph,
        &mut rungs,
        &mut proxy_enc,
        &mut proxy,
        &key_pts,
        &mut sprite,
        &mut poster_done,
        &mut next_segment,
        on_event,
    )?;
    if let (Some(d), Some(g), Some(e)) = (adec.as_mut(), agraph.as_mut(), aenc.as_mut()) {
        let _ = d.send_eof();
        while d.receive_frame(&mut aframe).is_ok() {
            let _ = g.get("ain").map(|mut s| s.source().add(&aframe));
        }
        let _ = g.get("ain").map(|mut s| s.source().flush());
        pump_audio(g, e, &mut rungs, enc_audio_tb)?;
        let _ = e.send_eof();
        let ae: &mut ff::encoder::Encoder = e;
        enc::drain(ae, |p| write_audio_all(&mut rungs, enc_audio_tb, &p))?;
    }
    for rs in rungs.iter_mut() {
        if let Some(e) = rs.enc.as_mut() {
            let _ = e.send_eof();
        }
        drain_rung(rs)?;
    }
    let _ = proxy_enc.send_eof();
    enc::drain(&mut proxy_enc, |p| proxy.write(0, sink_tb, &p))?;
    on_event(Event::Progress { percent: 96.0 });
    // Mobile first: its files are final before the others'.
    for i in std::iter::once(mobile).chain(0..mobile) {
        let rs = &mut rungs[i];
        rs.hls.finish()?;
        rs.mp4.finish()?;
        timings
            .renditions
            .push((rs.rung.name.clone(), started.elapsed().as_secs_f64()));
        if i == mobile {
            announce(&mobile_dir, &rs.rung.name, &mut next_segment, on_event);
        }
    }
    proxy.finish()?;
    if timings.first_segment_seconds == 0.0 {
        timings.first_segment_seconds = started.elapsed().as_secs_f64();
    }
    if !poster_done && let Some(p) = last_frame_poster(out_dir) {
        return Err(p);
    }
    let has_sprite = sprite.finish(out_dir, report.duration_ms)?;

    let info = finish_info(
        out_dir,
        report,
        &plan,
        &rungs,
        &v_params,
        fps,
        a_params.is_some(),
        has_sprite,
    )?;
    on_event(Event::Progress { percent: 100.0 });
    timings.total_seconds = started.elapsed().as_secs_f64();
    Ok((info, timings))
}

fn last_frame_poster(out_dir: &Path) -> Option<MediaError> {
    if out_dir.join("poster.jpg").exists() {
        None
    } else {
        Some(MediaError::new(
            MediaErrorCode::Empty,
            "no frame to make a poster from",
        ))
    }
}

fn drain_rung(rs: &mut RungState) -> Result<(), MediaError> {
    let Some(e) = rs.enc.as_mut() else {
        return Ok(());
    };
    let tb = rs.enc_tb;
    let (mp4, hls, bytes) = (&mut rs.mp4, &mut rs.hls, &mut rs.bytes);
    enc::drain(e, |p| {
        *bytes += p.size() as u64;
        mp4.write(0, tb, &p)?;
        hls.write(0, tb, &p)
    })
}

fn write_audio_all(
    rungs: &mut [RungState],
    tb: Rational,
    p: &ff::Packet,
) -> Result<(), MediaError> {
    for rs in rungs.iter_mut() {
        rs.mp4.write(1, tb, p)?;
        rs.hls.write(1, tb, p)?;
    }
    Ok(())
}

fn pump_audio(
    g: &mut ff::filter::Graph,
    e: &mut ff::encoder::Audio,
    rungs: &mut [RungState],
    tb: Rational,
) -> Result<(), MediaError> {
    let mut sink = g
        .get("aout")
        .ok_or_else(|| MediaError::internal("graph", "abuffersink"))?;
    let mut f = ff::frame::Audio::empty();
    while sink.sink().frame(&mut f).is_ok() {
        e.send_frame(&f)
            .map_err(|e| MediaError::internal("encode audio", e))?;
        let ae: &mut ff::encoder::Encoder = e;
        enc::drain(ae, |p| write_audio_all(rungs, tb, &p))?;
    }
    Ok(())
}

/// Emits a Segment event for every newly completed mobile segment.
fn announce(dir: &Path, name: &str, next: &mut u32, on_event: &mut dyn FnMut(Event)) {
    while dir.join(outputs::segment_name(*next)).exists() {
        on_event(Event::Segment {
            rendition: name.to_string(),
            index: *next,
        });
        *next += 1;
    }
}

#[allow(clippy::too_many_arguments)]
fn finish_info(
    out_dir: &Path,
    report: &ProbeReport,
    plan: &Plan,
    rungs: &[RungState],
    v_params: &ff::codec::Parameters,
    fps: f32,
    audio: bool,
    has_sprite: bool,
) -> Result<MediaInfo, MediaError> {
    let secs = (report.duration_ms as f64 / 1000.0).max(0.001);
    let mut renditions = Vec::new();
    let mut variants = Vec::new();
    for rs in rungs {
        let r = &rs.rung;
        let dir = out_dir.join("hls").join(&r.name);
        let text = std::fs::read_to_string(dir.join("index.m3u8"))
            .map_err(|e| MediaError::internal("read playlist", e))?;
        let pl = hls::parse_media(&text).map_err(|e| MediaError::internal("playlist", e))?;
        let (peak, avg) =
            hls::bitrates(&dir, &pl).map_err(|e| MediaError::internal("segments", e))?;
        // SAFETY: reading two ints of live codec parameters/contexts.
        let (profile, level) = unsafe {
            match &rs.enc {
                Some(e) => ((*e.as_ptr()).profile, (*e.as_ptr()).level),
                None => ((*v_params.as_ptr()).profile, (*v_params.as_ptr()).level),
            }
        };
        let codecs = if audio {
            format!("{},mp4a.40.2", hls::avc1(profile, level))
        } else {
            hls::avc1(profile, level)
        };
        variants.push(hls::Variant {
            uri: format!("{}/index.m3u8", r.name),
            bandwidth: peak,
            average_bandwidth: avg,
            width: r.width,
            height: r.height,
            codecs,
            frame_rate: fps,
        });
        renditions.push(Rendition {
            name: r.name.clone(),
            width: r.width,
            height: r.height,
            video_kbps: ((rs.bytes as f64 * 8.0 / secs) / 1000.0) as u32,
            mp4: format!("mp4/{}.mp4", r.name),
            playlist: format!("hls/{}/index.m3u8", r.name),
            copied: r.copy,
        });
    }
    std::fs::write(
        out_dir.join("hls").join("master.m3u8"),
        hls::master(&variants),
    )
    .map_err(|e| MediaError::internal("write master", e))?;
    let v = report.video.as_ref();
    let (w, h) = plan
        .rungs
        .first()
        .map(|r| (r.width, r.height))
        .unwrap_or_default();
    Ok(MediaInfo {
        duration_ms: report.duration_ms,
        width: v.map(|v| v.display_width).unwrap_or(w),
        height: v.map(|v| v.display_height).unwrap_or(h),
        fps,
        rotation: v.map(|v| v.rotation).unwrap_or(0),
        renditions,
        master: Some("hls/master.m3u8".into()),
        poster: Some("poster.jpg".into()),
        sprite: has_sprite.then(|| "sprite.jpg".into()),
        sprite_vtt: has_sprite.then(|| "sprite.vtt".into()),
        proxy: Some("proxy.mp4".into()),
        audio: None,
        loudness_lufs: None,
        file: None,
        mime: None,
    })
}

/// Writes `hls/master.m3u8` listing only the mobile rung, so it can be
/// published while the other rungs are still encoding (replaced at the end).
fn write_early_master(
    out_dir: &Path,
    rs: &RungState,
    fps: f32,
    audio: bool,
) -> Result<(), MediaError> {
    let (profile, level) = match &rs.enc {
        // SAFETY: reading two ints of a live codec context.
        Some(e) => unsafe { ((*e.as_ptr()).profile, (*e.as_ptr()).level) },
        None => (100, 40),
    };
    let avc = hls::avc1(profile, level);
    let r = &rs.rung;
    let text = hls::master(&[hls::Variant {
        uri: format!("{}/index.m3u8", r.name),
        bandwidth: r.maxrate_kbps as u64 * 1000 + if audio { 128_000 } else { 0 },
        average_bandwidth: r.maxrate_kbps as u64 * 700,
        width: r.width,
        height: r.height,
        codecs: if audio {
            format!("{avc},mp4a.40.2")
        } else {
            avc
        },
        frame_rate: fps,
    }]);
    std::fs::write(out_dir.join("hls").join("master.m3u8"), text)
        .map_err(|e| MediaError::internal("write master", e))
}

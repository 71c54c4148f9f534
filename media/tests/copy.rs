//! The copied top rendition (a source already H.264 at the rung's size,
//! packaged without re-encoding) must play like an encoded one: its MP4
//! decodes strictly (FFmpeg's `err_detect explode`) from the start AND from
//! every keyframe with a fresh decoder (what a browser does after a seek),
//! and every HLS segment decodes on its own. A source whose keyframes are
//! open-GOP recovery points (non-IDR) fails exactly that after a seek, in
//! FFmpeg as in Chromium (`PIPELINE_ERROR_DECODE`), so it is re-encoded.

use std::path::Path;

use chalktalk_media::hls;
use chalktalk_media::probe::{Limits, probe};
use chalktalk_media::sample::{SampleSpec, generate};
use chalktalk_media::transcode::{Options, transcode};
use chalktalk_protocol::{MediaInfo, MediaKind};
use ffmpeg_next as ff;

/// The video packets of a file, with its decoder parameters.
fn packets(path: &Path) -> (ff::codec::Parameters, Vec<ff::Packet>) {
    let mut ictx = ff::format::input(&path).unwrap();
    let st = ictx.streams().best(ff::media::Type::Video).unwrap();
    let (idx, params) = (st.index(), st.parameters());
    let pkts = ictx
        .packets()
        .filter(|(s, _)| s.index() == idx)
        .map(|(_, p)| p)
        .collect();
    (params, pkts)
}

/// Decodes `pkts` with a fresh strict decoder; the number of frames, or
/// the first error.
fn strict_decode(params: &ff::codec::Parameters, pkts: &[ff::Packet]) -> Result<u64, String> {
    let mut ctx = ff::codec::context::Context::from_parameters(params.clone()).unwrap();
    // SAFETY: setting an int of a codec context before it is opened.
    unsafe { (*ctx.as_mut_ptr()).err_recognition = ff::ffi::AV_EF_EXPLODE };
    let mut dec = ctx.decoder().video().unwrap();
    let mut f = ff::frame::Video::empty();
    let mut n = 0;
    for (i, p) in pkts.iter().enumerate() {
        dec.send_packet(p)
            .map_err(|e| format!("packet {i} (pts {:?}): {e}", p.pts()))?;
        while dec.receive_frame(&mut f).is_ok() {
            n += 1;
        }
    }
    dec.send_eof().map_err(|e| e.to_string())?;
    loop {
        match dec.receive_frame(&mut f) {
            Ok(()) => n += 1,
            Err(ff::Error::Eof) => break,
            Err(e) => return Err(format!("flush: {e}")),
        }
    }
    Ok(n)
}

/// Strict decodes of `path` from its start and from each keyframe (up to
/// the keyframe after the next); `Err` names the first that fails.
fn seekable(path: &Path) -> Result<u64, String> {
    let (params, pkts) = packets(path);
    let total = strict_decode(&params, &pkts)?;
    let keys: Vec<usize> = (0..pkts.len()).filter(|&i| pkts[i].is_key()).collect();
    for (k, &from) in keys.iter().enumerate() {
        let to = keys.get(k + 2).copied().unwrap_or(pkts.len());
        strict_decode(&params, &pkts[from..to])
            .map_err(|e| format!("{}: from keyframe {k}: {e}", path.display()))?;
    }
    Ok(total)
}

fn run(spec: SampleSpec) -> (tempfile::TempDir, std::path::PathBuf, MediaInfo) {
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("in.mp4");
    generate(&src, &spec).unwrap();
    let report = probe(&src, MediaKind::Video, &Limits::default()).unwrap();
    let out = d.path().join("out");
    let (info, _) = transcode(&src, &out, &report, &Options::default(), &mut |_| {}).unwrap();
    (d, out, info)
}

/// Every rendition: MP4 seekable, every HLS segment strict on its own.
fn check_outputs(out: &Path, info: &MediaInfo, frames: u64) {
    for r in &info.renditions {
        let n = seekable(&out.join(&r.mp4)).unwrap_or_else(|e| panic!("{}: {e}", r.name));
        assert_eq!(n, frames, "{}", r.name);
        let dir = out.join("hls").join(&r.name);
        let pl =
            hls::parse_media(&std::fs::read_to_string(dir.join("index.m3u8")).unwrap()).unwrap();
        let mut total = 0;
        for (_, uri) in &pl.segments {
            let (params, pkts) = packets(&dir.join(uri));
            total += strict_decode(&params, &pkts)
                .unwrap_or_else(|e| panic!("{} {uri} on its own: {e}", r.name));
        }
        assert_eq!(total, frames, "{}: frames over all segments", r.name);
    }
}

/// A 720p clip with B-frames (x264 veryfast), 6 s at 30 fps.
fn clip(open_gop: bool) -> SampleSpec {
    SampleSpec {
        preset: "veryfast",
        noise: 4,
        open_gop,
        ..SampleSpec::small(6.0, 1280, 720)
    }
}

#[test]
fn a_closed_gop_source_is_copied_and_plays_from_every_keyframe() {
    let (d, out, info) = run(clip(false));
    let src = probe(
        &d.path().join("in.mp4"),
        MediaKind::Video,
        &Limits::default(),
    )
    .unwrap();
    assert_eq!(src.video.unwrap().keyframes_not_idr, 0);
    assert_eq!(
        info.renditions
            .iter()
            .map(|r| (r.name.as_str(), r.copied))
            .collect::<Vec<_>>(),
        vec![("720p", true), ("480p", false)]
    );
    check_outputs(&out, &info, 180);
}

#[test]
fn an_open_gop_source_is_re_encoded_and_plays_from_every_keyframe() {
    let (d, out, info) = run(clip(true));
    let src = d.path().join("in.mp4");
    // The source itself cannot be started at its later keyframes: what a
    // copy of it used to carry into the 720p rendition.
    let report = probe(&src, MediaKind::Video, &Limits::default()).unwrap();
    assert!(report.video.unwrap().keyframes_not_idr > 0);
    let err = seekable(&src).expect_err("an open-GOP source is not seekable");
    assert!(err.contains("from keyframe"), "{err}");
    assert_eq!(
        info.renditions
            .iter()
            .map(|r| (r.name.as_str(), r.copied))
            .collect::<Vec<_>>(),
        vec![("720p", false), ("480p", false)]
    );
    check_outputs(&out, &info, 180);
}

//! The pipeline on real generated files: every rendition decodes with the
//! expected size and duration, HLS playlists are valid and every segment
//! decodes on its own starting with a keyframe, segments are aligned across
//! renditions, rotation is honoured, poster/sprite/proxy exist.

use std::path::Path;

use chalktalk_media::hls;
use chalktalk_media::probe::{Limits, probe};
use chalktalk_media::sample::{SampleSpec, generate};
use chalktalk_media::transcode::{Event, Options, transcode};
use chalktalk_protocol::MediaKind;

/// Frames decoded, first frame is key, duration in ms.
fn decode_all(path: &Path) -> (u64, bool, u64, u32, u32) {
    let r = probe(path, MediaKind::Video, &Limits::default())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let v = r.video.unwrap();
    let mut ictx = ffmpeg_next::format::input(&path).unwrap();
    let st = ictx
        .streams()
        .best(ffmpeg_next::media::Type::Video)
        .unwrap();
    let idx = st.index();
    let mut dec = ffmpeg_next::codec::context::Context::from_parameters(st.parameters())
        .unwrap()
        .decoder()
        .video()
        .unwrap();
    let (mut n, mut first_key) = (0u64, None);
    let mut f = ffmpeg_next::frame::Video::empty();
    let mut pkts = Vec::new();
    for (s, p) in ictx.packets() {
        if s.index() == idx {
            pkts.push(p);
        }
    }
    for p in pkts {
        dec.send_packet(&p).unwrap();
        while dec.receive_frame(&mut f).is_ok() {
            first_key.get_or_insert(f.is_key());
            n += 1;
        }
    }
    dec.send_eof().unwrap();
    while dec.receive_frame(&mut f).is_ok() {
        first_key.get_or_insert(f.is_key());
        n += 1;
    }
    (
        n,
        first_key.unwrap_or(false),
        r.duration_ms,
        v.display_width,
        v.display_height,
    )
}

#[test]
fn renditions_hls_and_stills_from_one_decode() {
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("in.mp4");
    generate(
        &src,
        &SampleSpec {
            noise: 4,
            ..SampleSpec::small(7.0, 1280, 720)
        },
    )
    .unwrap();
    let report = probe(&src, MediaKind::Video, &Limits::default()).unwrap();
    let out = d.path().join("out");
    let mut events = Vec::new();
    let (info, timings) = transcode(&src, &out, &report, &Options::default(), &mut |e| {
        events.push(e)
    })
    .unwrap();
    assert_eq!(
        info.renditions
            .iter()
            .map(|r| (r.name.as_str(), r.width, r.height, r.copied))
            .collect::<Vec<_>>(),
        vec![("720p", 1280, 720, true), ("480p", 854, 480, false)]
    );
    assert!(timings.first_segment_seconds <= timings.total_seconds);
    let segs: Vec<_> = events
        .iter()
        .filter(|e| matches!(e, Event::Segment { .. }))
        .collect();
    assert!(segs.len() >= 3, "{events:?}");
    assert!(matches!(events.last(), Some(Event::Progress { percent }) if *percent == 100.0));

    let mut seg_durations = Vec::new();
    for r in &info.renditions {
        let (frames, first_key, ms, w, h) = decode_all(&out.join(&r.mp4));
        assert_eq!(frames, 210, "{}", r.name);
        assert!(first_key);
        assert!((6900..=7200).contains(&ms), "{} {ms}", r.name);
        assert_eq!((w, h), (r.width, r.height));
        // faststart: moov before mdat.
        let bytes = std::fs::read(out.join(&r.mp4)).unwrap();
        let moov = bytes.windows(4).position(|w| w == b"moov").unwrap();
        let mdat = bytes.windows(4).position(|w| w == b"mdat").unwrap();
        assert!(moov < mdat, "{} not faststart", r.name);

        let dir = out.join("hls").join(&r.name);
        let pl =
            hls::parse_media(&std::fs::read_to_string(dir.join("index.m3u8")).unwrap()).unwrap();
        assert!(pl.ended);
        assert!((pl.duration() - 7.0).abs() < 0.2, "{}", pl.duration());
        let mut total = 0;
        for (dur, uri) in &pl.segments {
            let (n, key, _, w, h) = decode_all(&dir.join(uri));
            assert!(key, "{uri} must start with a keyframe");
            assert_eq!((w, h), (r.width, r.height));
            assert!(*dur <= 2.6, "{uri} {dur}");
            total += n;
        }
        assert_eq!(total, 210, "{}: frames over all segments", r.name);
        seg_durations.push(
            pl.segments
                .iter()
                .map(|(d, _)| (d * 1000.0).round() as i64)
                .collect::<Vec<_>>(),
        );
    }
    // Aligned: the same cut points (only the very end may differ by the
    // length of the last frame).
    let (a, b) = (&seg_durations[0], &seg_durations[1]);
    assert_eq!(a.len(), b.len());
    assert_eq!(
        a[..a.len() - 1],
        b[..b.len() - 1],
        "segments must be aligned across renditions"
    );
    assert!((a[a.len() - 1] - b[b.len() - 1]).abs() <= 40);
    let master =
        hls::parse_master(&std::fs::read_to_string(out.join("hls/master.m3u8")).unwrap()).unwrap();
    assert_eq!(master.len(), 2);
    assert!(
        master
            .iter()
            .all(|v| v.codecs.starts_with("avc1.") && v.codecs.ends_with("mp4a.40.2"))
    );
    assert!(master[0].bandwidth > master[1].bandwidth);

    let (pf, _, _, pw, ph) = decode_all(&out.join("proxy.mp4"));
    assert_eq!((pf, pw, ph), (210, 640, 360));
    assert!(
        std::fs::read(out.join("poster.jpg"))
            .unwrap()
            .starts_with(&[0xFF, 0xD8])
    );
    assert!(
        std::fs::read(out.join("sprite.jpg"))
            .unwrap()
            .starts_with(&[0xFF, 0xD8])
    );
    let vtt = std::fs::read_to_string(out.join("sprite.vtt")).unwrap();
    assert!(
        vtt.starts_with("WEBVTT") && vtt.contains("sprite.jpg#xywh=160,0,160,90"),
        "{vtt}"
    );
}

#[test]
fn phone_rotation_is_honoured() {
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("portrait.mp4");
    generate(
        &src,
        &SampleSpec {
            rotation: 90,
            ..SampleSpec::small(3.0, 640, 480)
        },
    )
    .unwrap();
    let report = probe(&src, MediaKind::Video, &Limits::default()).unwrap();
    let out = d.path().join("out");
    let (info, _) = transcode(&src, &out, &report, &Options::default(), &mut |_| {}).unwrap();
    assert_eq!(info.rotation, 90);
    assert_eq!((info.width, info.height), (480, 640));
    let r = &info.renditions[0];
    assert_eq!((r.name.as_str(), r.width, r.height), ("480p", 480, 640));
    let out_report = probe(&out.join(&r.mp4), MediaKind::Video, &Limits::default()).unwrap();
    let v = out_report.video.unwrap();
    assert_eq!(
        (v.width, v.height, v.rotation),
        (480, 640, 0),
        "pixels are upright, no rotation flag left"
    );
}

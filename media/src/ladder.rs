//! The rendition ladder: which H.264 rungs a source gets (only those not
//! above it), their sizes and bitrates, whether the top rung can be packaged
//! from the source without re-encoding (H.264 within limits whose every
//! keyframe is an IDR), and the proxy/thumbnail sizes.

use crate::report::ProbeReport;

/// One rung to produce.
#[derive(Debug, Clone, PartialEq)]
pub struct Rung {
    pub name: String,
    pub width: u32,
    pub height: u32,
    pub maxrate_kbps: u32,
    /// Package the source's own H.264 packets (no re-encode).
    pub copy: bool,
}

/// Everything the pipeline will produce for a source.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Best first; the last one is the mobile rendition.
    pub rungs: Vec<Rung>,
    pub proxy: (u32, u32),
    pub thumb: (u32, u32),
    /// Filter that turns the decoded picture upright, if any.
    pub upright: Option<&'static str>,
    pub copy_audio: bool,
}

/// Knobs of the ladder.
#[derive(Debug, Clone)]
pub struct LadderOptions {
    /// May the top rung reuse the source's packets?
    pub allow_copy: bool,
    /// Above this video bitrate the source is re-encoded even when it fits.
    pub copy_max_kbps: u32,
    /// Above this keyframe distance the source is re-encoded (segments and
    /// rendition switches need keyframes at least this often).
    pub copy_max_gop_ms: u64,
}

impl Default for LadderOptions {
    fn default() -> Self {
        LadderOptions {
            allow_copy: true,
            copy_max_kbps: 10_000,
            copy_max_gop_ms: 4_000,
        }
    }
}

const RUNGS: &[(u32, u32)] = &[(1080, 5_000), (720, 2_800), (480, 1_200)];
/// Short side of the scrub proxy.
const PROXY: u32 = 360;
/// Width of a scrub-bar thumbnail.
const THUMB_W: u32 = 160;

fn even(x: f64) -> u32 {
    (((x / 2.0).round() as u32) * 2).max(2)
}

/// Size with short side `short`, keeping the display aspect.
pub fn fit(dw: u32, dh: u32, short: u32) -> (u32, u32) {
    let s = dw.min(dh) as f64;
    let k = short as f64 / s;
    (even(dw as f64 * k), even(dh as f64 * k))
}

/// The plan for a probed video. `None` when there is no video stream.
pub fn plan(report: &ProbeReport, opts: &LadderOptions) -> Option<Plan> {
    let v = report.video.as_ref()?;
    let (dw, dh) = (v.display_width, v.display_height);
    let short = dw.min(dh);
    let mut rungs: Vec<Rung> = RUNGS
        .iter()
        .filter(|(r, _)| *r <= short)
        .map(|&(r, kbps)| {
            let (w, h) = fit(dw, dh, r);
            Rung {
                name: format!("{r}p"),
                width: w,
                height: h,
                maxrate_kbps: kbps,
                copy: false,
            }
        })
        .collect();
    if rungs.is_empty() {
        let s = even(short as f64);
        let (w, h) = fit(dw, dh, s);
        rungs.push(Rung {
            name: format!("{s}p"),
            width: w,
            height: h,
            maxrate_kbps: 800,
            copy: false,
        });
    }
    let top = &mut rungs[0];
    top.copy = opts.allow_copy
        && v.codec == "h264"
        && v.pix_fmt == "yuv420p"
        && v.rotation == 0
        && (top.width, top.height) == (dw, dh)
        && v.kbps <= opts.copy_max_kbps
        && v.max_keyframe_gap_ms <= opts.copy_max_gop_ms
        && v.keyframes_not_idr == 0
        && v.fps <= 60.5;
    // A copied mobile rung would be the source itself: always encode it.
    if rungs.len() == 1 {
        rungs[0].copy = false;
    }
    let proxy = fit(dw, dh, PROXY.min(short));
    let thumb = (THUMB_W, even(THUMB_W as f64 * dh as f64 / dw as f64));
    let upright = match v.rotation {
        90 => Some("transpose=clock"),
        180 => Some("hflip,vflip"),
        270 => Some("transpose=cclock"),
        _ => None,
    };
    let copy_audio = report.audio.as_ref().is_some_and(|a| {
        a.codec == "aac" && a.channels <= 2 && matches!(a.sample_rate, 44_100 | 48_000)
    });
    Some(Plan {
        rungs,
        proxy,
        thumb,
        upright,
        copy_audio,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::VideoInfo;

    fn report(w: u32, h: u32, rotation: u32, kbps: u32) -> ProbeReport {
        let (dw, dh) = if rotation % 180 == 90 { (h, w) } else { (w, h) };
        ProbeReport {
            format: "mov,mp4,m4a,3gp,3g2,mj2".into(),
            duration_ms: 60_000,
            video: Some(VideoInfo {
                index: 0,
                codec: "h264".into(),
                width: w,
                height: h,
                display_width: dw,
                display_height: dh,
                fps: 30.0,
                rotation,
                pix_fmt: "yuv420p".into(),
                kbps,
                frames: 1800,
                max_keyframe_gap_ms: 1000,
                keyframes_not_idr: 0,
            }),
            audio: None,
        }
    }

    #[test]
    fn only_rungs_not_above_the_source() {
        let p = plan(&report(1920, 1080, 0, 6000), &LadderOptions::default()).unwrap();
        let names: Vec<_> = p
            .rungs
            .iter()
            .map(|r| (r.name.as_str(), r.width, r.height, r.copy))
            .collect();
        assert_eq!(
            names,
            vec![
                ("1080p", 1920, 1080, true),
                ("720p", 1280, 720, false),
                ("480p", 854, 480, false)
            ]
        );
        let p = plan(&report(1280, 720, 0, 3000), &LadderOptions::default()).unwrap();
        assert_eq!(p.rungs.len(), 2);
        let p = plan(&report(320, 240, 0, 300), &LadderOptions::default()).unwrap();
        assert_eq!(
            (p.rungs.len(), p.rungs[0].name.as_str(), p.rungs[0].copy),
            (1, "240p", false)
        );
        assert_eq!(p.proxy, (320, 240));
    }

    #[test]
    fn portrait_phone_video_is_turned_upright_and_never_copied() {
        let p = plan(&report(1920, 1080, 90, 6000), &LadderOptions::default()).unwrap();
        assert_eq!(p.upright, Some("transpose=clock"));
        assert_eq!(
            (p.rungs[0].width, p.rungs[0].height, p.rungs[0].copy),
            (1080, 1920, false)
        );
        assert_eq!((p.rungs[2].width, p.rungs[2].height), (480, 854));
        assert_eq!(p.thumb, (160, 284));
    }

    #[test]
    fn heavy_sources_are_re_encoded() {
        let p = plan(&report(1920, 1080, 0, 16_000), &LadderOptions::default()).unwrap();
        assert!(!p.rungs[0].copy);
    }

    #[test]
    fn open_gop_sources_are_re_encoded() {
        // A keyframe that is not an IDR cannot start a decode after a seek.
        let mut r = report(1920, 1080, 0, 6000);
        if let Some(v) = r.video.as_mut() {
            v.keyframes_not_idr = 3;
        }
        let p = plan(&r, &LadderOptions::default()).unwrap();
        assert!(!p.rungs[0].copy);
    }
}

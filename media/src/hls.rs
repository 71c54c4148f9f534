//! HLS playlists: reading media playlists (ours, and in tests to check
//! them), measuring each rendition's real peak and average bitrate from its
//! segments, and writing the master playlist that lists the renditions with
//! BANDWIDTH, RESOLUTION, CODECS and FRAME-RATE.

use std::path::Path;

/// A media playlist as written by the segmenter.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MediaPlaylist {
    pub target_duration: u32,
    /// (duration in seconds, segment URI) in order.
    pub segments: Vec<(f64, String)>,
    /// `#EXT-X-ENDLIST` seen: the rendition is complete.
    pub ended: bool,
}

impl MediaPlaylist {
    pub fn duration(&self) -> f64 {
        self.segments.iter().map(|(d, _)| d).sum()
    }
}

/// Parses a media playlist; `Err` says what is wrong with it.
pub fn parse_media(text: &str) -> Result<MediaPlaylist, String> {
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    if lines.next() != Some("#EXTM3U") {
        return Err("missing #EXTM3U".into());
    }
    let mut p = MediaPlaylist::default();
    let mut pending: Option<f64> = None;
    for l in lines {
        if let Some(v) = l.strip_prefix("#EXT-X-TARGETDURATION:") {
            p.target_duration = v.parse().map_err(|_| format!("bad target duration {v}"))?;
        } else if let Some(v) = l.strip_prefix("#EXTINF:") {
            let d = v.split(',').next().unwrap_or("");
            pending = Some(d.parse().map_err(|_| format!("bad EXTINF {v}"))?);
        } else if l == "#EXT-X-ENDLIST" {
            p.ended = true;
        } else if !l.starts_with('#') {
            let d = pending
                .take()
                .ok_or_else(|| format!("segment {l} without EXTINF"))?;
            p.segments.push((d, l.to_string()));
        }
    }
    if p.target_duration == 0 {
        return Err("missing #EXT-X-TARGETDURATION".into());
    }
    if let Some((d, u)) = p
        .segments
        .iter()
        .find(|(d, _)| d.round() as u32 > p.target_duration)
    {
        return Err(format!("segment {u} lasts {d} s, over the target duration"));
    }
    Ok(p)
}

/// Peak and average bits per second over a rendition's segments.
pub fn bitrates(dir: &Path, playlist: &MediaPlaylist) -> std::io::Result<(u64, u64)> {
    let (mut peak, mut bits, mut secs) = (0u64, 0u64, 0f64);
    for (d, uri) in &playlist.segments {
        let len = std::fs::metadata(dir.join(uri))?.len() * 8;
        if *d > 0.2 {
            peak = peak.max((len as f64 / d) as u64);
        }
        bits += len;
        secs += d;
    }
    let avg = if secs > 0.0 {
        (bits as f64 / secs) as u64
    } else {
        0
    };
    Ok((peak.max(avg), avg))
}

/// One line of the master playlist.
#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    pub uri: String,
    pub bandwidth: u64,
    pub average_bandwidth: u64,
    pub width: u32,
    pub height: u32,
    pub codecs: String,
    pub frame_rate: f32,
}

/// The master playlist text.
pub fn master(variants: &[Variant]) -> String {
    let mut s = String::from("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    for v in variants {
        s.push_str(&format!(
            "#EXT-X-STREAM-INF:BANDWIDTH={},AVERAGE-BANDWIDTH={},RESOLUTION={}x{},CODECS=\"{}\",FRAME-RATE={:.3}\n{}\n",
            v.bandwidth, v.average_bandwidth, v.width, v.height, v.codecs, v.frame_rate, v.uri
        ));
    }
    s
}

/// Reads a master playlist back (tests and tools).
pub fn parse_master(text: &str) -> Result<Vec<Variant>, String> {
    let mut out = Vec::new();
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    if lines.next() != Some("#EXTM3U") {
        return Err("missing #EXTM3U".into());
    }
    let mut pending: Option<Variant> = None;
    for l in lines {
        if let Some(attrs) = l.strip_prefix("#EXT-X-STREAM-INF:") {
            let mut v = Variant {
                uri: String::new(),
                bandwidth: 0,
                average_bandwidth: 0,
                width: 0,
                height: 0,
                codecs: String::new(),
                frame_rate: 0.0,
            };
            for (k, val) in split_attrs(attrs) {
                match k {
                    "BANDWIDTH" => v.bandwidth = val.parse().map_err(|_| "bad BANDWIDTH")?,
                    "AVERAGE-BANDWIDTH" => {
                        v.average_bandwidth = val.parse().map_err(|_| "bad AVERAGE-BANDWIDTH")?
                    }
                    "RESOLUTION" => {
                        let (w, h) = val.split_once('x').ok_or("bad RESOLUTION")?;
                        v.width = w.parse().map_err(|_| "bad RESOLUTION")?;
                        v.height = h.parse().map_err(|_| "bad RESOLUTION")?;
                    }
                    "CODECS" => v.codecs = val.trim_matches('"').to_string(),
                    "FRAME-RATE" => v.frame_rate = val.parse().map_err(|_| "bad FRAME-RATE")?,
                    _ => {}
                }
            }
            if v.bandwidth == 0 {
                return Err("variant without BANDWIDTH".into());
            }
            pending = Some(v);
        } else if !l.starts_with('#') {
            let mut v = pending
                .take()
                .ok_or_else(|| format!("{l} without EXT-X-STREAM-INF"))?;
            v.uri = l.to_string();
            out.push(v);
        }
    }
    Ok(out)
}

fn split_attrs(s: &str) -> Vec<(&str, &str)> {
    let mut out = Vec::new();
    let (mut start, mut quoted) = (0, false);
    for (i, c) in s.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.extend(s[start..i].split_once('='));
                start = i + 1;
            }
            _ => {}
        }
    }
    out.extend(s[start..].split_once('='));
    out
}

/// RFC 6381 codec string of an H.264 stream ("avc1.64001f").
pub fn avc1(profile: i32, level: i32) -> String {
    let (p, constraints) = match profile {
        66 | 578 => (66, 0xE0),
        77 => (77, 0x40),
        88 => (88, 0x00),
        p if p > 0 => (p & 0xFF, 0x00),
        _ => (100, 0x00),
    };
    let level = if level > 0 { level } else { 40 };
    format!("avc1.{:02x}{:02x}{:02x}", p, constraints, level)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn master_round_trips() {
        let v = Variant {
            uri: "720p/index.m3u8".into(),
            bandwidth: 3_000_000,
            average_bandwidth: 2_500_000,
            width: 1280,
            height: 720,
            codecs: "avc1.64001f,mp4a.40.2".into(),
            frame_rate: 30.0,
        };
        let text = master(std::slice::from_ref(&v));
        assert_eq!(parse_master(&text).unwrap(), vec![v]);
    }

    #[test]
    fn media_playlist_checks() {
        let ok = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.000000,\nseg_00000.ts\n#EXTINF:1.5,\nseg_00001.ts\n#EXT-X-ENDLIST\n";
        let p = parse_media(ok).unwrap();
        assert_eq!(p.segments.len(), 2);
        assert!(p.ended);
        assert!((p.duration() - 3.5).abs() < 1e-9);
        assert!(parse_media("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:4.0,\na.ts\n").is_err());
        assert!(parse_media("nope").is_err());
        assert_eq!(avc1(100, 31), "avc1.64001f");
        assert_eq!(avc1(578, 30), "avc1.42e01e");
    }
}

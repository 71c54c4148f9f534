//! Still images: JPEG encoding of a frame (the poster) and the scrub-bar
//! sprite, a grid of small thumbnails in one JPEG with a WebVTT index that
//! maps time ranges to `sprite.jpg#xywh=x,y,w,h`.

use std::path::Path;

use ff::software::scaling::{Context as Scaler, Flags};
use ffmpeg_next as ff;

use crate::error::MediaError;

/// Scales `frame` to `w`x`h` yuv420p.
pub fn scale(frame: &ff::frame::Video, w: u32, h: u32) -> Result<ff::frame::Video, MediaError> {
    let mut sc = Scaler::get(
        frame.format(),
        frame.width(),
        frame.height(),
        ff::format::Pixel::YUV420P,
        w,
        h,
        Flags::BILINEAR,
    )
    .map_err(|e| MediaError::internal("scaler", e))?;
    let mut out = ff::frame::Video::empty();
    sc.run(frame, &mut out)
        .map_err(|e| MediaError::internal("scale", e))?;
    Ok(out)
}

/// Writes `frame` as a JPEG file (quality ~85).
pub fn write_jpeg(frame: &ff::frame::Video, path: &Path) -> Result<(), MediaError> {
    let (w, h) = (frame.width(), frame.height());
    let mut sc = Scaler::get(
        frame.format(),
        w,
        h,
        ff::format::Pixel::YUVJ420P,
        w,
        h,
        Flags::BILINEAR,
    )
    .map_err(|e| MediaError::internal("scaler", e))?;
    let mut full = ff::frame::Video::empty();
    sc.run(frame, &mut full)
        .map_err(|e| MediaError::internal("scale", e))?;
    full.set_pts(Some(0));
    let codec = ff::encoder::find(ff::codec::Id::MJPEG)
        .ok_or_else(|| MediaError::internal("jpeg", "no MJPEG encoder"))?;
    let mut enc = ff::codec::context::Context::new_with_codec(codec)
        .encoder()
        .video()
        .map_err(|e| MediaError::internal("jpeg", e))?;
    enc.set_width(w);
    enc.set_height(h);
    enc.set_format(ff::format::Pixel::YUVJ420P);
    enc.set_time_base(ff::Rational(1, 25));
    enc.set_qmin(2);
    enc.set_qmax(5);
    enc.set_global_quality(4 * 118);
    enc.set_flags(ff::codec::Flags::QSCALE);
    let mut enc = enc.open().map_err(|e| MediaError::internal("jpeg", e))?;
    enc.send_frame(&full)
        .map_err(|e| MediaError::internal("jpeg", e))?;
    enc.send_eof()
        .map_err(|e| MediaError::internal("jpeg", e))?;
    let mut p = ff::Packet::empty();
    enc.receive_packet(&mut p)
        .map_err(|e| MediaError::internal("jpeg", e))?;
    let data = p
        .data()
        .ok_or_else(|| MediaError::internal("jpeg", "empty packet"))?;
    std::fs::write(path, data).map_err(|e| MediaError::internal("write jpeg", e))
}

/// Collects thumbnails every `interval_ms` and writes the sprite at the end.
pub struct Sprite {
    pub interval_ms: u64,
    pub tile: (u32, u32),
    pub columns: u32,
    next_ms: u64,
    thumbs: Vec<ff::frame::Video>,
}

impl Sprite {
    /// About 100 thumbnails over `duration_ms`, at least 1 s apart.
    pub fn new(duration_ms: u64, tile: (u32, u32)) -> Sprite {
        let interval_ms = (duration_ms / 100).div_ceil(1000).max(1) * 1000;
        Sprite {
            interval_ms,
            tile,
            columns: 10,
            next_ms: 0,
            thumbs: Vec::new(),
        }
    }

    /// Offers the frame shown at `t_ms`; keeps it if a thumbnail is due.
    pub fn offer(&mut self, frame: &ff::frame::Video, t_ms: u64) -> Result<(), MediaError> {
        if t_ms >= self.next_ms && self.thumbs.len() < 400 {
            self.thumbs.push(scale(frame, self.tile.0, self.tile.1)?);
            self.next_ms = (self.thumbs.len() as u64) * self.interval_ms;
        }
        Ok(())
    }

    /// Writes `sprite.jpg` and `sprite.vtt` into `dir`; false if no thumbs.
    pub fn finish(self, dir: &Path, duration_ms: u64) -> Result<bool, MediaError> {
        if self.thumbs.is_empty() {
            return Ok(false);
        }
        let (tw, th) = self.tile;
        let n = self.thumbs.len() as u32;
        let cols = self.columns.min(n);
        let rows = n.div_ceil(cols);
        let mut grid = ff::frame::Video::new(ff::format::Pixel::YUV420P, cols * tw, rows * th);
        for plane in 0..3 {
            let fill = if plane == 0 { 16 } else { 128 };
            grid.data_mut(plane).fill(fill);
        }
        for (i, t) in self.thumbs.iter().enumerate() {
            let (cx, cy) = ((i as u32 % cols) * tw, (i as u32 / cols) * th);
            for plane in 0..3 {
                let div = if plane == 0 { 1 } else { 2 };
                let (pw, ph) = ((tw / div) as usize, (th / div) as usize);
                let (sx, sy) = ((cx / div) as usize, (cy / div) as usize);
                let src_stride = t.stride(plane);
                let dst_stride = grid.stride(plane);
                for row in 0..ph {
                    let src = &t.data(plane)[row * src_stride..row * src_stride + pw];
                    let off = (sy + row) * dst_stride + sx;
                    grid.data_mut(plane)[off..off + pw].copy_from_slice(src);
                }
            }
        }
        write_jpeg(&grid, &dir.join("sprite.jpg"))?;
        let mut vtt = String::from("WEBVTT\n\n");
        for i in 0..n {
            let start = i as u64 * self.interval_ms;
            let end = ((i as u64 + 1) * self.interval_ms).min(duration_ms.max(start + 1));
            vtt.push_str(&format!(
                "{} --> {}\nsprite.jpg#xywh={},{},{},{}\n\n",
                vtt_time(start),
                vtt_time(end),
                (i % cols) * tw,
                (i / cols) * th,
                tw,
                th
            ));
        }
        std::fs::write(dir.join("sprite.vtt"), vtt)
            .map_err(|e| MediaError::internal("write vtt", e))?;
        Ok(true)
    }
}

fn vtt_time(ms: u64) -> String {
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        ms / 3_600_000,
        (ms / 60_000) % 60,
        (ms / 1000) % 60,
        ms % 1000
    )
}

//! Small FFmpeg building blocks shared by the generators and the pipeline:
//! opening H.264/AAC/MJPEG encoders with threads on auto, draining packets,
//! filter graphs and dictionaries.

use ff::{Dictionary, Rational};
use ffmpeg_next as ff;

use crate::error::MediaError;

pub fn dict(opts: &[(&str, String)]) -> Dictionary<'static> {
    let mut d = Dictionary::new();
    for (k, v) in opts {
        d.set(k, v);
    }
    d
}

pub fn threads(ctx: &mut ff::codec::context::Context) {
    ctx.set_threading(ff::codec::threading::Config {
        kind: ff::codec::threading::Type::Frame,
        count: 0,
        ..Default::default()
    });
}

/// libx264, yuv420p, threads on auto.
pub fn h264(
    width: u32,
    height: u32,
    frame_rate: Rational,
    time_base: Rational,
    global_header: bool,
    opts: &[(&str, String)],
) -> Result<ff::encoder::Video, MediaError> {
    let codec = ff::encoder::find_by_name("libx264")
        .ok_or_else(|| MediaError::internal("H.264 encoder", "libx264 is not available"))?;
    let mut ctx = ff::codec::context::Context::new_with_codec(codec);
    threads(&mut ctx);
    let mut enc = ctx
        .encoder()
        .video()
        .map_err(|e| MediaError::internal("H.264 encoder", e))?;
    enc.set_width(width);
    enc.set_height(height);
    enc.set_format(ff::format::Pixel::YUV420P);
    enc.set_time_base(time_base);
    enc.set_frame_rate(Some(frame_rate));
    if global_header {
        enc.set_flags(ff::codec::Flags::GLOBAL_HEADER);
    }
    enc.open_with(dict(opts))
        .map_err(|e| MediaError::internal("H.264 encoder", e))
}

/// The native AAC encoder: 48 kHz stereo float planar.
pub fn aac(bit_rate: usize, global_header: bool) -> Result<ff::encoder::Audio, MediaError> {
    let codec = ff::encoder::find(ff::codec::Id::AAC)
        .ok_or_else(|| MediaError::internal("AAC encoder", "not available"))?;
    let mut ctx = ff::codec::context::Context::new_with_codec(codec);
    threads(&mut ctx);
    let mut enc = ctx
        .encoder()
        .audio()
        .map_err(|e| MediaError::internal("AAC encoder", e))?;
    enc.set_rate(48_000);
    enc.set_channel_layout(ff::ChannelLayout::STEREO);
    enc.set_format(ff::format::Sample::F32(ff::format::sample::Type::Planar));
    enc.set_bit_rate(bit_rate);
    enc.set_time_base(Rational(1, 48_000));
    if global_header {
        enc.set_flags(ff::codec::Flags::GLOBAL_HEADER);
    }
    enc.open()
        .map_err(|e| MediaError::internal("AAC encoder", e))
}

/// Any audio encoder by name at 48 kHz stereo (`libopus`, `pcm_s16le`...).
pub fn audio_by_name(
    name: &str,
    format: ff::format::Sample,
    global_header: bool,
) -> Result<ff::encoder::Audio, MediaError> {
    let codec = ff::encoder::find_by_name(name)
        .ok_or_else(|| MediaError::internal("audio encoder", format!("{name} is not available")))?;
    let mut enc = ff::codec::context::Context::new_with_codec(codec)
        .encoder()
        .audio()
        .map_err(|e| MediaError::internal("audio encoder", e))?;
    enc.set_rate(48_000);
    enc.set_channel_layout(ff::ChannelLayout::STEREO);
    enc.set_format(format);
    enc.set_bit_rate(96_000);
    enc.set_time_base(Rational(1, 48_000));
    if global_header {
        enc.set_flags(ff::codec::Flags::GLOBAL_HEADER);
    }
    enc.open()
        .map_err(|e| MediaError::internal("audio encoder", e))
}

/// Every packet the encoder has ready.
pub fn drain(
    enc: &mut ff::encoder::Encoder,
    mut f: impl FnMut(ff::Packet) -> Result<(), MediaError>,
) -> Result<(), MediaError> {
    loop {
        let mut p = ff::Packet::empty();
        match enc.receive_packet(&mut p) {
            Ok(()) => f(p)?,
            Err(ff::Error::Eof) => return Ok(()),
            Err(ff::Error::Other { errno }) if errno == ff::util::error::EAGAIN => return Ok(()),
            Err(e) => return Err(MediaError::internal("encoder", e)),
        }
    }
}

/// A graph whose spec reads from buffer source(s) named `ins` and writes to
/// sinks named `outs` (created here: `buffer`/`abuffer` args come with ins).
pub fn graph(
    ins: &[(&str, &str, &str)],
    outs: &[(&str, &str)],
    spec: &str,
) -> Result<ff::filter::Graph, MediaError> {
    let mut g = ff::filter::Graph::new();
    let find = |n: &str| {
        ff::filter::find(n).ok_or_else(|| MediaError::internal("filter", format!("{n} missing")))
    };
    for (name, kind, args) in ins {
        g.add(&find(kind)?, name, args)
            .map_err(|e| MediaError::internal("filter source", e))?;
    }
    for (name, kind) in outs {
        g.add(&find(kind)?, name, "")
            .map_err(|e| MediaError::internal("filter sink", e))?;
    }
    let mut p = ff::filter::graph::Parser::new(&mut g);
    for (name, _, _) in ins {
        p = p
            .output(name, 0)
            .map_err(|e| MediaError::internal("filter graph", e))?;
    }
    for (name, _) in outs {
        p = p
            .input(name, 0)
            .map_err(|e| MediaError::internal("filter graph", e))?;
    }
    p.parse(spec)
        .map_err(|e| MediaError::internal("filter graph", e))?;
    g.validate()
        .map_err(|e| MediaError::internal("filter graph", e))?;
    Ok(g)
}

/// Writes the display matrix for a clockwise rotation onto an output stream
/// (what phones record).
pub fn set_rotation(octx: &mut ff::format::context::Output, index: usize, cw: u32) {
    if cw.is_multiple_of(360) {
        return;
    }
    // SAFETY: the stream exists (index from add_stream) and the side data
    // buffer is allocated by FFmpeg with room for the 9 i32 of a matrix.
    unsafe {
        let st = *(*octx.as_mut_ptr()).streams.add(index);
        let data = ff::ffi::av_stream_new_side_data(
            st,
            ff::ffi::AVPacketSideDataType::AV_PKT_DATA_DISPLAYMATRIX,
            36,
        );
        if !data.is_null() {
            // FFmpeg's reading convention (cmdutils get_rotation): clockwise
            // display rotation = -av_display_rotation_get(m), and
            // get(set(x)) == -x.
            ff::ffi::av_display_rotation_set(data as *mut i32, cw as f64);
        }
    }
}

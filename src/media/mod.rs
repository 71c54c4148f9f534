//! Media probing and transcoding with ffmpeg-next (being written).

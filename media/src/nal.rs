//! H.264 access units read at the NAL level (no FFmpeg): whether a packet
//! holds an IDR picture. A keyframe that is not an IDR (an open-GOP
//! recovery point) is not a random access point a browser can start
//! decoding at, so such a source must not be copied into a rendition.
//!
//! Packets come either length-prefixed (MP4/MOV, "AVCC": the prefix size is
//! in the `avcC` extradata) or with start codes (MPEG-TS, raw, "Annex B").

/// How a stream's packets delimit their NAL units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Each NAL unit is preceded by its length in this many bytes (1..=4).
    Length(usize),
    /// NAL units are separated by `00 00 01` / `00 00 00 01` start codes.
    AnnexB,
}

/// The framing of an H.264 stream from its codec extradata: an `avcC`
/// record (first byte 1) gives the length size; anything else (no
/// extradata, or start codes) means Annex B.
pub fn framing(extradata: &[u8]) -> Framing {
    match extradata {
        [1, _, _, _, b, ..] => Framing::Length(usize::from(b & 3) + 1),
        _ => Framing::AnnexB,
    }
}

/// NAL unit type of an IDR slice.
pub const NAL_IDR: u8 = 5;
/// NAL unit type of a non-IDR slice.
pub const NAL_SLICE: u8 = 1;

/// The NAL unit types of one packet, in order. Malformed input ends the
/// list early (never panics).
pub fn unit_types(data: &[u8], framing: Framing) -> Vec<u8> {
    let mut out = Vec::new();
    match framing {
        Framing::Length(n) => {
            let mut i = 0usize;
            while i + n <= data.len() {
                let len = data[i..i + n]
                    .iter()
                    .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
                i += n;
                if len == 0 || i + len > data.len() {
                    break;
                }
                out.push(data[i] & 0x1f);
                i += len;
            }
        }
        Framing::AnnexB => {
            let mut i = 0usize;
            while i + 3 <= data.len() {
                if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
                    if let Some(h) = data.get(i + 3) {
                        out.push(h & 0x1f);
                    }
                    i += 3;
                } else {
                    i += 1;
                }
            }
        }
    }
    out
}

/// Does this packet hold an IDR picture?
pub fn has_idr(data: &[u8], framing: Framing) -> bool {
    unit_types(data, framing).contains(&NAL_IDR)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_prefixed_units() {
        // SEI (6), IDR slice (5), with 4-byte lengths.
        let p = [0, 0, 0, 2, 0x06, 0xff, 0, 0, 0, 3, 0x65, 0x88, 0x80];
        assert_eq!(unit_types(&p, Framing::Length(4)), vec![6, 5]);
        assert!(has_idr(&p, Framing::Length(4)));
        // A recovery-point I frame of an open GOP: SEI + non-IDR slice.
        let q = [0, 0, 0, 2, 0x06, 0xff, 0, 0, 0, 2, 0x41, 0x9a];
        assert_eq!(unit_types(&q, Framing::Length(4)), vec![6, NAL_SLICE]);
        assert!(!has_idr(&q, Framing::Length(4)));
        // Truncated or absurd lengths stop the walk.
        assert!(unit_types(&[0, 0, 0, 9, 0x65], Framing::Length(4)).is_empty());
        assert!(unit_types(&[0, 0], Framing::Length(4)).is_empty());
    }

    #[test]
    fn annex_b_units_and_framing() {
        let p = [0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 1, 0x65, 4];
        assert_eq!(unit_types(&p, Framing::AnnexB), vec![7, 8, 5]);
        assert!(has_idr(&p, Framing::AnnexB));
        assert!(!has_idr(&[0, 0, 1, 0x41, 0], Framing::AnnexB));
        assert_eq!(framing(&[1, 0x64, 0, 0x1f, 0xff, 0xe1]), Framing::Length(4));
        assert_eq!(framing(&[1, 0x64, 0, 0x1f, 0xfd]), Framing::Length(2));
        assert_eq!(framing(&[0, 0, 0, 1, 0x67]), Framing::AnnexB);
        assert_eq!(framing(&[]), Framing::AnnexB);
    }
}

//! MessagePack codec. Structs are encoded as maps with field names
//! (`rmp_serde::to_vec_named`) so clients in other languages can read frames
//! without a schema. Client frames are decoded in two steps so that a frame
//! of an unknown type still yields its request id and a precise error code.

use serde::{Deserialize, Serialize};

use crate::{ClientFrame, ClientMsg, ErrorCode, ServerFrame};

/// Why a client frame could not be decoded; `id` is the request id when it
/// could be read (0 otherwise).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct DecodeError {
    pub id: u32,
    pub code: ErrorCode,
    pub message: String,
}

/// Encodes any protocol value as named MessagePack.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    // Most frames are a few hundred bytes: start there rather than grow
    // from nothing (six reallocations for a 300-byte stroke preview).
    let mut buf = Vec::with_capacity(256);
    // The protocol types contain only strings, numbers, sequences and
    // string-keyed structs, all of which rmp-serde encodes infallibly.
    match rmp_serde::encode::write_named(&mut buf, value) {
        Ok(()) => buf,
        Err(_) => Vec::new(),
    }
}

/// What the diagnosis can read of a frame that did not decode: the request
/// id (kept even when a later part of the frame is broken) and the `t` of
/// `m` when `m` is a map with a string `t`.
#[derive(Default)]
struct Head {
    id: Option<u32>,
    tag: Option<String>,
    /// `m` was present (whatever its shape).
    has_m: bool,
}

/// Reads the outer map key by key into `head`, so an id read before a
/// malformed `m` survives the error that follows.
struct HeadSeed<'h>(&'h mut Head);

impl<'de> serde::de::DeserializeSeed<'de> for HeadSeed<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for HeadSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a map with `id` and `m`")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        use serde::de::IgnoredAny;
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::Id => self.0.id = map.next_value::<Option<u32>>()?,
                Key::M => {
                    self.0.has_m = true;
                    if let Lenient::Map { t } = map.next_value::<Lenient>()? {
                        self.0.tag = t;
                    }
                }
                Key::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// A map key of interest (`id`, `m`) or anything else.
enum Key {
    Id,
    M,
    Other,
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Key, D::Error> {
        Ok(match Lenient::deserialize(d)? {
            Lenient::Str(k) if k == "id" => Key::Id,
            Lenient::Str(k) if k == "m" => Key::M,
            _ => Key::Other,
        })
    }
}

/// Any MessagePack value, read without failing on its type: a string, a
/// map (only its string `t` kept) or something else (skipped).
enum Lenient {
    Str(String),
    Map { t: Option<String> },
    Other,
}

impl<'de> Deserialize<'de> for Lenient {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Lenient, D::Error> {
        d.deserialize_any(LenientVisitor)
    }
}

struct LenientVisitor;

macro_rules! skip_scalars {
    ($($name:ident: $ty:ty),*) => {$(
        fn $name<E: serde::de::Error>(self, _: $ty) -> Result<Lenient, E> {
            Ok(Lenient::Other)
        }
    )*};
}

impl<'de> serde::de::Visitor<'de> for LenientVisitor {
    type Value = Lenient;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any value")
    }
    skip_scalars!(visit_bool: bool, visit_i64: i64, visit_u64: u64, visit_f64: f64, visit_bytes: &[u8]);
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Lenient, E> {
        Ok(Lenient::Str(v.to_owned()))
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<Lenient, E> {
        Ok(Lenient::Other)
    }
    fn visit_none<E: serde::de::Error>(self) -> Result<Lenient, E> {
        Ok(Lenient::Other)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut a: A) -> Result<Lenient, A::Error> {
        while a.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(Lenient::Other)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut a: A) -> Result<Lenient, A::Error> {
        let mut t = None;
        while let Some(k) = a.next_key::<Lenient>()? {
            match k {
                Lenient::Str(k) if k == "t" => {
                    if let Lenient::Str(v) = a.next_value::<Lenient>()? {
                        t = Some(v);
                    }
                }
                _ => {
                    a.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        Ok(Lenient::Map { t })
    }
}

/// Decodes a client frame, telling malformed bytes, unknown types and bad
/// fields apart. Whenever the request id can be read, the error carries it
/// (even if `m` is broken, of the wrong type or truncated).
pub fn decode_client(bytes: &[u8]) -> Result<ClientFrame, DecodeError> {
    // Happy path: one decode. Only a failure pays for the diagnosis.
    if let Ok(frame) = rmp_serde::from_slice::<ClientFrame>(bytes) {
        return Ok(frame);
    }
    let mut head = Head::default();
    let read = {
        use serde::de::DeserializeSeed;
        let mut d = rmp_serde::Deserializer::from_read_ref(bytes);
        HeadSeed(&mut head).deserialize(&mut d)
    };
    let id = head.id.unwrap_or(0);
    if let Err(e) = read {
        let message = match head.id {
            Some(_) => format!("frame `m` is not readable MessagePack: {e}"),
            None => format!("not a MessagePack map with `id` and `m`: {e}"),
        };
        return Err(DecodeError {
            id,
            code: ErrorCode::BadFrame,
            message,
        });
    }
    let Some(t) = head.tag else {
        let message = if head.has_m {
            "`m` must be a map with a string `t` (the message type)"
        } else {
            "frame has no `m` map with a `t` type"
        };
        return Err(DecodeError {
            id,
            code: ErrorCode::BadFrame,
            message: message.into(),
        });
    };
    if !ClientMsg::TYPES.contains(&t.as_str()) {
        let mut name = t;
        name.truncate(64);
        return Err(DecodeError {
            id,
            code: ErrorCode::UnknownType,
            message: format!("unknown message type `{name}`"),
        });
    }
    rmp_serde::from_slice::<ClientFrame>(bytes).map_err(|e| DecodeError {
        id,
        code: ErrorCode::Invalid,
        message: format!("bad `{t}` message: {e}"),
    })
}

/// Encodes `ServerFrame::Room { room, ev }` around an event already
/// encoded with [`encode`] (the bytes the store keeps): the same bytes as
/// encoding the whole `ServerFrame::Room`, with the event encoded once for
/// store and frame.
pub fn encode_room_frame(room: &str, ev: &[u8]) -> Vec<u8> {
    let mut buf = Vec::with_capacity(ev.len() + room.len() + 16);
    let b = &mut buf;
    // Writing to a Vec cannot fail.
    let _ = rmp::encode::write_map_len(b, 3);
    let _ = rmp::encode::write_str(b, "t");
    let _ = rmp::encode::write_str(b, "room");
    let _ = rmp::encode::write_str(b, "room");
    let _ = rmp::encode::write_str(b, room);
    let _ = rmp::encode::write_str(b, "ev");
    buf.extend_from_slice(ev);
    buf
}

/// The annotations of one snapshot page as a MessagePack array (the
/// `annotations` field of a `snapshot_page` reply), to be spliced into
/// every reply that carries the page ([`encode_page_reply`]).
pub fn encode_annotations<'a>(anns: impl Iterator<Item = &'a crate::Annotation>) -> Vec<u8> {
    let items: Vec<Vec<u8>> = anns.map(encode).collect();
    join_array(&items)
}

/// One MessagePack array of already encoded values.
pub fn join_array(items: &[Vec<u8>]) -> Vec<u8> {
    let mut buf = Vec::with_capacity(5 + items.iter().map(Vec::len).sum::<usize>());
    // Writing to a Vec cannot fail.
    let _ = rmp::encode::write_array_len(&mut buf, items.len() as u32);
    for i in items {
        buf.extend_from_slice(i);
    }
    buf
}

/// Encodes `ok {id, r: snapshot_page {room, seq, page, pages,
/// annotations}}` around already encoded `annotations`
/// ([`encode_annotations`]): the same bytes as encoding the reply, without
/// re-encoding the page for every request.
pub fn encode_page_reply(
    id: u32,
    room: &str,
    seq: u64,
    page: u32,
    pages: u32,
    annotations: &[u8],
) -> Vec<u8> {
    let mut buf = Vec::with_capacity(annotations.len() + room.len() + 96);
    let b = &mut buf;
    // Writing to a Vec cannot fail.
    let _ = rmp::encode::write_map_len(b, 3);
    let _ = rmp::encode::write_str(b, "t");
    let _ = rmp::encode::write_str(b, "ok");
    let _ = rmp::encode::write_str(b, "id");
    let _ = rmp::encode::write_uint(b, u64::from(id));
    let _ = rmp::encode::write_str(b, "r");
    let _ = rmp::encode::write_map_len(b, 6);
    let _ = rmp::encode::write_str(b, "t");
    let _ = rmp::encode::write_str(b, "snapshot_page");
    let _ = rmp::encode::write_str(b, "room");
    let _ = rmp::encode::write_str(b, room);
    let _ = rmp::encode::write_str(b, "seq");
    let _ = rmp::encode::write_uint(b, seq);
    let _ = rmp::encode::write_str(b, "page");
    let _ = rmp::encode::write_uint(b, u64::from(page));
    let _ = rmp::encode::write_str(b, "pages");
    let _ = rmp::encode::write_uint(b, u64::from(pages));
    let _ = rmp::encode::write_str(b, "annotations");
    buf.extend_from_slice(annotations);
    buf
}

/// Decodes a server frame (used by clients).
pub fn decode_server(bytes: &[u8]) -> Result<ServerFrame, rmp_serde::decode::Error> {
    rmp_serde::from_slice(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Annotation, Point, RoomOp, Shape, Style};

    #[test]
    fn client_frames_round_trip() {
        let f = ClientFrame {
            id: 9,
            m: ClientMsg::Op {
                room: "r1".into(),
                op_id: "o1".into(),
                op: RoomOp::Add {
                    ann: Annotation {
                        id: "a".into(),
                        author: String::new(),
                        t_ms: 5,
                        dur_ms: None,
                        style: Style::default(),
                        shape: Shape::Stroke {
                            points: vec![Point(0.25, 0.5)],
                        },
                    },
                },
            },
        };
        assert_eq!(decode_client(&encode(&f)).unwrap(), f);
    }

    #[test]
    fn spliced_room_frame_is_byte_identical() {
        let ev = crate::RoomEvent {
            seq: 3,
            by: "c".into(),
            op_id: "o".into(),
            at_ms: 9,
            op: RoomOp::Undo,
            target: Some(2),
            effects: vec![crate::Effect::Remove { id: "a".into() }],
        };
        let owned = encode(&ServerFrame::Room {
            room: "r".into(),
            ev: ev.clone(),
        });
        assert_eq!(encode_room_frame("r", &encode(&ev)), owned);
    }

    #[test]
    fn spliced_page_reply_is_byte_identical() {
        let anns: Vec<Annotation> = (0..3)
            .map(|i| Annotation {
                id: format!("a{i}"),
                author: "c".into(),
                t_ms: 70_000 * i,
                dur_ms: Some(5),
                style: Style::default(),
                shape: Shape::Stroke {
                    points: vec![Point(0.25, 0.5); 40],
                },
            })
            .collect();
        for (id, seq) in [(0, 0), (7, 300), (70_000, u64::MAX), (u32::MAX, 1 << 40)] {
            let owned = encode(&ServerFrame::Ok {
                id,
                r: crate::Reply::SnapshotPage {
                    room: "r-1".into(),
                    seq,
                    page: 200,
                    pages: 70_000,
                    annotations: anns.clone(),
                },
            });
            let spliced = encode_page_reply(
                id,
                "r-1",
                seq,
                200,
                70_000,
                &encode_annotations(anns.iter()),
            );
            assert_eq!(spliced, owned);
        }
    }

    #[test]
    fn errors_are_told_apart() {
        let e = decode_client(&[0xc1, 0x00]).unwrap_err();
        assert_eq!((e.id, e.code), (0, ErrorCode::BadFrame));

        #[derive(Serialize)]
        struct Odd<'a> {
            id: u32,
            m: OddMsg<'a>,
        }
        #[derive(Serialize)]
        struct OddMsg<'a> {
            t: &'a str,
            room: u8,
        }
        let unknown = encode(&Odd {
            id: 4,
            m: OddMsg {
                t: "teleport",
                room: 1,
            },
        });
        let e = decode_client(&unknown).unwrap_err();
        assert_eq!((e.id, e.code), (4, ErrorCode::UnknownType));

        let bad_field = encode(&Odd {
            id: 5,
            m: OddMsg {
                t: "join_room",
                room: 1,
            },
        });
        let e = decode_client(&bad_field).unwrap_err();
        assert_eq!((e.id, e.code), (5, ErrorCode::Invalid));

        let e = decode_client(&encode(&7u32)).unwrap_err();
        assert_eq!(e.code, ErrorCode::BadFrame);
    }

    /// A readable id is echoed even when `m` is not a typed map.
    #[test]
    fn readable_ids_survive_a_broken_m() {
        #[derive(Serialize)]
        struct F<M> {
            id: u32,
            m: M,
        }
        #[derive(Serialize)]
        struct X {
            x: u8,
        }
        let no_t = encode(&F {
            id: 32,
            m: X { x: 1 },
        });
        let e = decode_client(&no_t).unwrap_err();
        assert_eq!((e.id, e.code), (32, ErrorCode::BadFrame), "{}", e.message);

        let scalar = encode(&F { id: 33, m: 7u8 });
        let e = decode_client(&scalar).unwrap_err();
        assert_eq!((e.id, e.code), (33, ErrorCode::BadFrame), "{}", e.message);

        // `m` is a map32 claiming 4 billion entries, then nothing.
        let mut bomb = encode(&F { id: 34, m: () });
        bomb.pop(); // the nil of `m`
        bomb.extend_from_slice(&[0xdf, 0xff, 0xff, 0xff, 0xff]);
        let e = decode_client(&bomb).unwrap_err();
        assert_eq!((e.id, e.code), (34, ErrorCode::BadFrame), "{}", e.message);

        // A non-string `t` is no type either.
        #[derive(Serialize)]
        struct T {
            t: u8,
        }
        let e = decode_client(&encode(&F {
            id: 35,
            m: T { t: 3 },
        }))
        .unwrap_err();
        assert_eq!((e.id, e.code), (35, ErrorCode::BadFrame));

        // `m` before `id` still finds the id (keys in any order).
        #[derive(Serialize)]
        struct Rev {
            m: X,
            id: u32,
        }
        let e = decode_client(&encode(&Rev {
            m: X { x: 1 },
            id: 36,
        }))
        .unwrap_err();
        assert_eq!((e.id, e.code), (36, ErrorCode::BadFrame));
    }
}

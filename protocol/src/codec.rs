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
    // The protocol types contain only strings, numbers, sequences and
    // string-keyed structs, all of which rmp-serde encodes infallibly.
    rmp_serde::to_vec_named(value).unwrap_or_default()
}

#[derive(Deserialize)]
struct Head {
    #[serde(default)]
    id: Option<u32>,
    #[serde(default)]
    m: Option<Tag>,
}

#[derive(Deserialize)]
struct Tag {
    t: String,
}

/// Decodes a client frame, telling malformed bytes, unknown types and bad
/// fields apart.
pub fn decode_client(bytes: &[u8]) -> Result<ClientFrame, DecodeError> {
    // Happy path: one decode. Only a failure pays for the diagnosis.
    if let Ok(frame) = rmp_serde::from_slice::<ClientFrame>(bytes) {
        return Ok(frame);
    }
    let head: Head = rmp_serde::from_slice(bytes).map_err(|e| DecodeError {
        id: 0,
        code: ErrorCode::BadFrame,
        message: format!("not a MessagePack map with `id` and `m`: {e}"),
    })?;
    let id = head.id.unwrap_or(0);
    let Some(tag) = head.m else {
        return Err(DecodeError {
            id,
            code: ErrorCode::BadFrame,
            message: "frame has no `m` map with a `t` type".into(),
        });
    };
    if !ClientMsg::TYPES.contains(&tag.t.as_str()) {
        let mut name = tag.t;
        name.truncate(64);
        return Err(DecodeError {
            id,
            code: ErrorCode::UnknownType,
            message: format!("unknown message type `{name}`"),
        });
    }
    rmp_serde::from_slice(bytes).map_err(|e| DecodeError {
        id,
        code: ErrorCode::Invalid,
        message: format!("bad `{}` message: {e}", tag.t),
    })
}

/// Encodes `ServerFrame::Room { room, ev }` from borrowed parts: the same
/// bytes, without cloning the event (the room's hot path).
pub fn encode_room_event(room: &str, ev: &crate::RoomEvent) -> Vec<u8> {
    #[derive(Serialize)]
    struct RoomRef<'a> {
        t: &'static str,
        room: &'a str,
        ev: &'a crate::RoomEvent,
    }
    encode(&RoomRef {
        t: "room",
        room,
        ev,
    })
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
    fn borrowed_room_frame_is_byte_identical() {
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
        assert_eq!(encode_room_event("r", &ev), owned);
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
}

//! What relays of two nodes tell each other, and how it crosses the
//! cluster link (a hand-written `ractor::Message`: MessagePack for the
//! requests, a flat binary framing for the frames going down, which are
//! already-encoded server frames and are copied as they are).

use bytes::Bytes;
use chalktalk_protocol::{ClientMsg, Role, UserId};
use ractor::message::{BoxedDowncastErr, SerializedMessage};
use serde::{Deserialize, Serialize};

use crate::outbound::SessionId;

/// A request of a session on the sending node (the edge) for a room the
/// receiving node owns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Up {
    /// The edge node.
    pub from: String,
    /// The session on the edge node.
    pub session: SessionId,
    pub user: UserId,
    pub device: String,
    /// The token's role (what an `op` is planned with).
    pub role: Option<Role>,
    /// The client's request id (0 for live input).
    pub req: u32,
    /// `join_room`, `leave_room`, `snapshot_page`, `op`, `points`,
    /// `pointer` or `activity`, as the client sent it.
    pub msg: ClientMsg,
}

/// The relay actor's messages.
#[derive(Debug)]
pub enum RelayMsg {
    /// Edge → owner: a session's request for one of the owner's rooms.
    Up(Box<Up>),
    /// Edge → owner: the session's connection ended (presence grace).
    Gone {
        from: String,
        session: SessionId,
        room: String,
    },
    /// Owner → edge: frames for sessions of the edge node. Each frame
    /// crosses once with the sessions it is for (a room's broadcast to
    /// several members of that node is one entry); in order per session.
    /// Then the closes asked for by the owner (slow consumers).
    Down(Down),
    /// Local: drop what belongs to nodes that are no longer up.
    Sweep,
}

const UP: &str = "up";
const GONE: &str = "gone";
const DOWN: &str = "down";

/// What crosses down in one message.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Down {
    pub groups: Vec<(Bytes, Vec<SessionId>)>,
    pub closes: Vec<(SessionId, u16, String)>,
}

#[derive(Serialize, Deserialize)]
struct GoneWire {
    from: String,
    session: SessionId,
    room: String,
}

fn put_u32(out: &mut Vec<u8>, n: usize) -> Result<(), BoxedDowncastErr> {
    out.extend_from_slice(
        &u32::try_from(n)
            .map_err(|_| BoxedDowncastErr)?
            .to_be_bytes(),
    );
    Ok(())
}

fn encode_down(d: &Down) -> Result<Vec<u8>, BoxedDowncastErr> {
    let size: usize = d
        .groups
        .iter()
        .map(|(f, s)| f.len() + 8 + 8 * s.len())
        .sum();
    let mut out = Vec::with_capacity(8 + size + 32 * d.closes.len());
    put_u32(&mut out, d.groups.len())?;
    for (frame, sessions) in &d.groups {
        put_u32(&mut out, frame.len())?;
        out.extend_from_slice(frame);
        put_u32(&mut out, sessions.len())?;
        for s in sessions {
            out.extend_from_slice(&s.to_be_bytes());
        }
    }
    put_u32(&mut out, d.closes.len())?;
    for (session, code, reason) in &d.closes {
        out.extend_from_slice(&session.to_be_bytes());
        out.extend_from_slice(&code.to_be_bytes());
        put_u32(&mut out, reason.len())?;
        out.extend_from_slice(reason.as_bytes());
    }
    Ok(out)
}

/// Reads the framing of [`encode_down`]; any inconsistency is an error.
/// The frames are slices of the one received buffer (no copy).
fn decode_down(bytes: Vec<u8>) -> Result<RelayMsg, BoxedDowncastErr> {
    let all = Bytes::from(bytes);
    let mut at = 0usize;
    let take = |at: &mut usize, n: usize| -> Result<Bytes, BoxedDowncastErr> {
        let end = at
            .checked_add(n)
            .filter(|e| *e <= all.len())
            .ok_or(BoxedDowncastErr)?;
        let b = all.slice(*at..end);
        *at = end;
        Ok(b)
    };
    let u32_at = |at: &mut usize| -> Result<usize, BoxedDowncastErr> {
        let b = take(at, 4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
    };
    let u64_at = |at: &mut usize| -> Result<u64, BoxedDowncastErr> {
        let b = take(at, 8)?;
        Ok(u64::from_be_bytes(
            b[..8].try_into().map_err(|_| BoxedDowncastErr)?,
        ))
    };
    let mut d = Down::default();
    let groups = u32_at(&mut at)?;
    for _ in 0..groups {
        let n = u32_at(&mut at)?;
        let frame = take(&mut at, n)?;
        let count = u32_at(&mut at)?;
        let mut sessions = Vec::with_capacity(count.min(4096));
        for _ in 0..count {
            sessions.push(u64_at(&mut at)?);
        }
        d.groups.push((frame, sessions));
    }
    let closes = u32_at(&mut at)?;
    for _ in 0..closes {
        let session = u64_at(&mut at)?;
        let c = take(&mut at, 2)?;
        let code = u16::from_be_bytes([c[0], c[1]]);
        let n = u32_at(&mut at)?;
        let reason = String::from_utf8(take(&mut at, n)?.to_vec()).map_err(|_| BoxedDowncastErr)?;
        d.closes.push((session, code, reason));
    }
    if at != all.len() {
        return Err(BoxedDowncastErr);
    }
    Ok(RelayMsg::Down(d))
}

impl ractor::Message for RelayMsg {
    fn serializable() -> bool {
        true
    }

    fn serialize(self) -> Result<SerializedMessage, BoxedDowncastErr> {
        let (variant, args) = match self {
            RelayMsg::Up(up) => (
                UP,
                rmp_serde::to_vec_named(&*up).map_err(|_| BoxedDowncastErr)?,
            ),
            RelayMsg::Gone {
                from,
                session,
                room,
            } => (
                GONE,
                rmp_serde::to_vec_named(&GoneWire {
                    from,
                    session,
                    room,
                })
                .map_err(|_| BoxedDowncastErr)?,
            ),
            RelayMsg::Down(d) => (DOWN, encode_down(&d)?),
            RelayMsg::Sweep => return Err(BoxedDowncastErr),
        };
        Ok(SerializedMessage::Cast {
            variant: variant.into(),
            args,
            metadata: None,
        })
    }

    fn deserialize(m: SerializedMessage) -> Result<Self, BoxedDowncastErr> {
        let SerializedMessage::Cast { variant, args, .. } = m else {
            return Err(BoxedDowncastErr);
        };
        match variant.as_str() {
            UP => rmp_serde::from_slice::<Up>(&args)
                .map(|u| RelayMsg::Up(Box::new(u)))
                .map_err(|_| BoxedDowncastErr),
            GONE => rmp_serde::from_slice::<GoneWire>(&args)
                .map(|g| RelayMsg::Gone {
                    from: g.from,
                    session: g.session,
                    room: g.room,
                })
                .map_err(|_| BoxedDowncastErr),
            DOWN => decode_down(args),
            _ => Err(BoxedDowncastErr),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chalktalk_protocol::{RoomOp, StrokeIn};
    use ractor::Message;

    fn round(m: RelayMsg) -> RelayMsg {
        RelayMsg::deserialize(m.serialize().expect("serialize")).expect("deserialize")
    }

    #[test]
    fn requests_and_frames_survive_the_wire() {
        let up = Up {
            from: "n2".into(),
            session: 7,
            user: "coach".into(),
            device: "d".into(),
            role: Some(Role::Coach),
            req: 9,
            msg: ClientMsg::Op {
                room: "r-1".into(),
                op_id: "o1".into(),
                op: RoomOp::Rate { rate: 0.5 },
            },
        };
        let RelayMsg::Up(back) = round(RelayMsg::Up(Box::new(up.clone()))) else {
            panic!("up expected");
        };
        assert_eq!(*back, up);
        let points = Up {
            msg: ClientMsg::Points(StrokeIn {
                room: "r-1".into(),
                live: chalktalk_protocol::LiveStroke {
                    stroke: "s1".into(),
                    points: vec![chalktalk_protocol::Point(0.5, 0.25)],
                    ..Default::default()
                },
            }),
            ..up
        };
        let RelayMsg::Up(back) = round(RelayMsg::Up(Box::new(points.clone()))) else {
            panic!("up expected");
        };
        assert_eq!(*back, points);

        let down = Down {
            groups: vec![
                (Bytes::from_static(b"\x81\xa1t\xa4room"), vec![1, 1 << 40]),
                (Bytes::new(), vec![7]),
            ],
            closes: vec![(7, 4008, "slow".into())],
        };
        let RelayMsg::Down(back) = round(RelayMsg::Down(down.clone())) else {
            panic!("down expected");
        };
        assert_eq!(back, down);
    }

    #[test]
    fn truncated_frames_are_refused() {
        let wire = RelayMsg::Down(Down {
            groups: vec![(Bytes::from_static(b"abcdef"), vec![3, 4])],
            closes: vec![(3, 4008, "x".into())],
        })
        .serialize()
        .unwrap();
        let SerializedMessage::Cast { args, .. } = wire else {
            panic!("cast");
        };
        for cut in 0..args.len() {
            let m = SerializedMessage::Cast {
                variant: DOWN.into(),
                args: args[..cut].to_vec(),
                metadata: None,
            };
            assert!(RelayMsg::deserialize(m).is_err(), "cut at {cut}");
        }
    }
}

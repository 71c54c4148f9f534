//! What relays of two nodes tell each other: the requests and notices
//! that cross the cluster link (a hand-written `ractor::Message`,
//! MessagePack), and [`Down`], the frames going down, in a flat binary
//! framing (already-encoded server frames, copied as they are) that the
//! relay link carries (`stream.rs`).

use bytes::Bytes;
use chalktalk_protocol::{ClientMsg, InboxEvent, Notice, Role, UserId};
use ractor::message::{BoxedDowncastErr, SerializedMessage};
use serde::{Deserialize, Serialize};

use super::link::Class;
use crate::outbound::SessionId;

/// What a relayed request is for: a review room or a chat thread.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "k", content = "id", rename_all = "snake_case")]
pub enum Target {
    Room(String),
    Thread(String),
}

impl Target {
    /// The room or thread a client request names (`None`: neither).
    pub fn of(m: &ClientMsg) -> Option<Target> {
        use chalktalk_protocol::StrokeIn;
        Some(match m {
            ClientMsg::JoinRoom { room, .. }
            | ClientMsg::LeaveRoom { room }
            | ClientMsg::SnapshotPage { room, .. }
            | ClientMsg::Op { room, .. }
            | ClientMsg::Points(StrokeIn { room, .. })
            | ClientMsg::Pointer { room, .. }
            | ClientMsg::Activity { room, .. } => Target::Room(room.clone()),
            ClientMsg::OpenThread { thread, .. }
            | ClientMsg::CloseThread { thread }
            | ClientMsg::Send { thread, .. }
            | ClientMsg::EditMessage { thread, .. }
            | ClientMsg::DeleteMessage { thread, .. }
            | ClientMsg::Typing { thread, .. }
            | ClientMsg::Mark { thread, .. }
            | ClientMsg::History { thread, .. } => Target::Thread(thread.clone()),
            _ => return None,
        })
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Room(id) => write!(f, "room {id}"),
            Target::Thread(id) => write!(f, "thread {id}"),
        }
    }
}

/// A request of a session on the sending node (the edge) for a room or
/// thread the receiving node owns.
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
    /// A room request (`join_room`, `leave_room`, `snapshot_page`, `op`,
    /// `points`, `pointer`, `activity`) or a thread request (`open_thread`
    /// ... `history`), as the client sent it.
    pub msg: ClientMsg,
}

/// The relay actor's messages.
#[derive(Debug)]
pub enum RelayMsg {
    /// Edge → owner: a session's request for one of the owner's rooms or
    /// threads.
    Up(Box<Up>),
    /// Edge → owner: the session's connection ended (presence grace).
    Gone {
        from: String,
        session: SessionId,
        target: Target,
    },
    /// Any node → the owner of a user's inbox: a notice to store there.
    Deliver { user: UserId, notice: Notice },
    /// Any node → every other: inbox notices it stored (for the devices
    /// of those users connected to the receiving node).
    Inbox(Vec<(UserId, InboxEvent)>),
    /// Any node → every other: an ephemeral frame for a user's devices
    /// (media progress).
    InboxPush { user: UserId, frame: Bytes },
    /// Local: drop what belongs to nodes that are no longer up.
    Sweep,
}

const UP: &str = "up";
const GONE: &str = "gone";
const INBOX: &str = "inbox";
const DELIVER: &str = "deliver";
const PUSH: &str = "push";

/// `InboxPush` on the wire: the user's length (u32), the user, the frame.
fn encode_push(user: &str, frame: &[u8]) -> Result<Vec<u8>, BoxedDowncastErr> {
    let mut out = Vec::with_capacity(4 + user.len() + frame.len());
    put_u32(&mut out, user.len())?;
    out.extend_from_slice(user.as_bytes());
    out.extend_from_slice(frame);
    Ok(out)
}

fn decode_push(args: Vec<u8>) -> Result<RelayMsg, BoxedDowncastErr> {
    let n = u32::from_be_bytes(
        args.get(..4)
            .ok_or(BoxedDowncastErr)?
            .try_into()
            .map_err(|_| BoxedDowncastErr)?,
    ) as usize;
    let end = n
        .checked_add(4)
        .filter(|e| *e <= args.len())
        .ok_or(BoxedDowncastErr)?;
    let user = std::str::from_utf8(&args[4..end])
        .map_err(|_| BoxedDowncastErr)?
        .to_string();
    let frame = Bytes::from(args).slice(end..);
    Ok(RelayMsg::InboxPush { user, frame })
}

/// Owner → edge: frames for sessions of the edge node, one relay link
/// batch. Each frame crosses once with the sessions it is for (a room's
/// broadcast to several members of that node is one entry); in order per
/// session. Then the closes asked for by the owner (slow consumers, lost
/// frames).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Down {
    /// Each frame once, with how the edge queues it and for which of its
    /// sessions.
    pub groups: Vec<(Bytes, Class, Vec<SessionId>)>,
    pub closes: Vec<(SessionId, u16, String)>,
}

#[derive(Serialize, Deserialize)]
struct GoneWire {
    from: String,
    session: SessionId,
    target: Target,
}

fn put_u32(out: &mut Vec<u8>, n: usize) -> Result<(), BoxedDowncastErr> {
    out.extend_from_slice(
        &u32::try_from(n)
            .map_err(|_| BoxedDowncastErr)?
            .to_be_bytes(),
    );
    Ok(())
}

/// Appends the flat framing of `d` to `out` (a relay link batch's body).
pub(crate) fn encode_down_into(d: &Down, out: &mut Vec<u8>) -> Result<(), BoxedDowncastErr> {
    let size: usize = d
        .groups
        .iter()
        .map(|(f, _, s)| f.len() + 9 + 8 * s.len())
        .sum();
    out.reserve(8 + size + 32 * d.closes.len());
    put_u32(out, d.groups.len())?;
    for (frame, class, sessions) in &d.groups {
        put_u32(out, frame.len())?;
        out.extend_from_slice(frame);
        out.push(class.byte());
        put_u32(out, sessions.len())?;
        for s in sessions {
            out.extend_from_slice(&s.to_be_bytes());
        }
    }
    put_u32(out, d.closes.len())?;
    for (session, code, reason) in &d.closes {
        out.extend_from_slice(&session.to_be_bytes());
        out.extend_from_slice(&code.to_be_bytes());
        put_u32(out, reason.len())?;
        out.extend_from_slice(reason.as_bytes());
    }
    Ok(())
}

/// Reads the framing of [`encode_down_into`]; any inconsistency is an
/// error. The frames are slices of the one received buffer (no copy).
pub(crate) fn decode_down_bytes(bytes: Vec<u8>) -> Result<Down, BoxedDowncastErr> {
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
        let class = Class::from_byte(take(&mut at, 1)?[0]).ok_or(BoxedDowncastErr)?;
        let count = u32_at(&mut at)?;
        let mut sessions = Vec::with_capacity(count.min(4096));
        for _ in 0..count {
            sessions.push(u64_at(&mut at)?);
        }
        d.groups.push((frame, class, sessions));
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
    Ok(d)
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
                target,
            } => (
                GONE,
                rmp_serde::to_vec_named(&GoneWire {
                    from,
                    session,
                    target,
                })
                .map_err(|_| BoxedDowncastErr)?,
            ),
            RelayMsg::Deliver { user, notice } => (
                DELIVER,
                rmp_serde::to_vec_named(&(user, notice)).map_err(|_| BoxedDowncastErr)?,
            ),
            RelayMsg::Inbox(evs) => (
                INBOX,
                rmp_serde::to_vec_named(&evs).map_err(|_| BoxedDowncastErr)?,
            ),
            RelayMsg::InboxPush { user, frame } => (PUSH, encode_push(&user, &frame)?),
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
                    target: g.target,
                })
                .map_err(|_| BoxedDowncastErr),
            INBOX => rmp_serde::from_slice(&args)
                .map(RelayMsg::Inbox)
                .map_err(|_| BoxedDowncastErr),
            PUSH => decode_push(args),
            DELIVER => rmp_serde::from_slice::<(UserId, Notice)>(&args)
                .map(|(user, notice)| RelayMsg::Deliver { user, notice })
                .map_err(|_| BoxedDowncastErr),
            _ => Err(BoxedDowncastErr),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relay::Class;
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
        let send = Up {
            msg: ClientMsg::Send {
                thread: "t-1".into(),
                msg_id: "m1".into(),
                text: "knee".into(),
                attachments: vec![],
                reply_to: Some(3),
            },
            ..points
        };
        assert_eq!(Target::of(&send.msg), Some(Target::Thread("t-1".into())));
        let RelayMsg::Up(back) = round(RelayMsg::Up(Box::new(send.clone()))) else {
            panic!("up expected");
        };
        assert_eq!(*back, send);
        for target in [Target::Room("r-1".into()), Target::Thread("t-1".into())] {
            let RelayMsg::Gone {
                from,
                session,
                target: back,
            } = round(RelayMsg::Gone {
                from: "n2".into(),
                session: 7,
                target: target.clone(),
            })
            else {
                panic!("gone expected");
            };
            assert_eq!((from.as_str(), session, back), ("n2", 7, target));
        }

        let down = Down {
            groups: vec![
                (
                    Bytes::from_static(b"\x81\xa1t\xa4room"),
                    Class::Durable,
                    vec![1, 1 << 40],
                ),
                (Bytes::new(), Class::Ephemeral, vec![7]),
            ],
            closes: vec![(7, 4008, "slow".into())],
        };
        let mut bytes = Vec::new();
        encode_down_into(&down, &mut bytes).expect("encode");
        assert_eq!(decode_down_bytes(bytes).expect("decode"), down);
    }

    #[test]
    fn inbox_notices_and_pushes_survive_the_wire() {
        let ev = InboxEvent {
            seq: 12,
            at_ms: 1_700_000_000_000,
            notice: chalktalk_protocol::Notice::NewMessage {
                thread: "t-1".into(),
                seq: 4,
                from: "coach".into(),
                preview: "knee".into(),
            },
        };
        let RelayMsg::Deliver { user, notice } = round(RelayMsg::Deliver {
            user: "athlete".into(),
            notice: ev.notice.clone(),
        }) else {
            panic!("deliver expected");
        };
        assert_eq!((user.as_str(), &notice), ("athlete", &ev.notice));
        let RelayMsg::Inbox(back) = round(RelayMsg::Inbox(vec![("athlete".into(), ev.clone())]))
        else {
            panic!("inbox expected");
        };
        assert_eq!(back, vec![("athlete".to_string(), ev)]);
        let frame = Bytes::from_static(b"\x82\xa1t\xa5media");
        let RelayMsg::InboxPush { user, frame: f } = round(RelayMsg::InboxPush {
            user: "u\u{e9}".into(),
            frame: frame.clone(),
        }) else {
            panic!("push expected");
        };
        assert_eq!((user.as_str(), f), ("u\u{e9}", frame));
        let wire = RelayMsg::InboxPush {
            user: "abc".into(),
            frame: Bytes::new(),
        }
        .serialize()
        .unwrap();
        refuses_every_truncation(wire, PUSH);
    }

    /// Every strict prefix of a serialized message is refused.
    fn refuses_every_truncation(wire: SerializedMessage, variant: &str) {
        let SerializedMessage::Cast { args, .. } = wire else {
            panic!("cast");
        };
        for cut in 0..args.len() {
            let m = SerializedMessage::Cast {
                variant: variant.into(),
                args: args[..cut].to_vec(),
                metadata: None,
            };
            assert!(RelayMsg::deserialize(m).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn truncated_frames_are_refused() {
        let mut args = Vec::new();
        let down = Down {
            groups: vec![(Bytes::from_static(b"abcdef"), Class::Durable, vec![3, 4])],
            closes: vec![(3, 4008, "x".into())],
        };
        encode_down_into(&down, &mut args).expect("encode");
        for cut in 0..args.len() {
            assert!(
                decode_down_bytes(args[..cut].to_vec()).is_err(),
                "cut at {cut}"
            );
        }
        // An unknown class is refused too (after the count, the length
        // and the 6 bytes of the frame).
        args[4 + 4 + 6] = 9;
        assert!(decode_down_bytes(args).is_err());
    }
}

//! Rooms across nodes: a session on any node reaches a room owned by
//! another node through this node's relay.
//!
//! - On the edge node (where the client is connected), the directory hands
//!   the session a [`proxy::RoomProxy`] for a room whose lease another live
//!   node holds. It looks like the room to the session (same `RoomMsg`s),
//!   and sends each request up to the owner's relay as the client's own
//!   message ([`wire::Up`]).
//! - On the owner node, the relay's [`endpoint`] gives each remote member
//!   of a room a shadow connection: a real [`Outbound`] queue the room
//!   fans out to like any other member, under the same policy (ephemeral
//!   frames dropped when it fills, durable ones marking it lagging); its
//!   drain task ships what the room queued down to the edge node in
//!   batches ([`wire::RelayMsg::Down`]), where the relay pushes the frames
//!   into the session's own queue.
//! - A proxy whose owner goes down, or whose room's lease moved, stops and
//!   tells its sessions to rejoin (`resync`); an owner drops the shadows of
//!   a node that went down (their presence grace starts).
//!
//! Relays find each other through ractor's process groups (scope
//! `chalktalk-relay`, one group per node name), across the cluster link.

pub mod endpoint;
pub mod proxy;
pub mod wire;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use chalktalk_protocol::{ClientMsg, Role};
use ractor::ActorRef;

use crate::outbound::{Conn, Outbound, SessionId};
pub use wire::{Down, RelayMsg, Up};

/// The process-group scope of relays.
pub const SCOPE: &str = "chalktalk-relay";

/// Whether a node is up (the cluster's failure detector).
pub type LiveFn = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// This node's relay: what proxies and the endpoint share.
pub struct Relay {
    node: String,
    endpoint: OnceLock<ActorRef<RelayMsg>>,
    /// Sessions of this node that joined a room through a proxy, for the
    /// frames coming down.
    locals: Mutex<HashMap<SessionId, Weak<Conn>>>,
    live: OnceLock<LiveFn>,
    /// Ids of shadow connections (high bit set: never a local session's).
    shadow_ids: AtomicU64,
    /// Requests sent up and not answered yet: (session, request id) →
    /// room. A proxy that stops answers its room's (see [`Relay::fail_pending`]).
    pending: Mutex<HashMap<(SessionId, u32), String>>,
}

impl Relay {
    pub(crate) fn new(node: String) -> Arc<Relay> {
        Arc::new(Relay {
            node,
            endpoint: OnceLock::new(),
            locals: Mutex::new(HashMap::new()),
            live: OnceLock::new(),
            shadow_ids: AtomicU64::new(1 << 63),
            pending: Mutex::new(HashMap::new()),
        })
    }

    pub(crate) fn set_endpoint(&self, e: ActorRef<RelayMsg>) {
        let _ = self.endpoint.set(e);
    }

    pub(crate) fn endpoint(&self) -> Option<ActorRef<RelayMsg>> {
        self.endpoint.get().cloned()
    }

    pub fn node(&self) -> &str {
        &self.node
    }

    /// Tells the relay how to know which nodes are up (set once, when the
    /// cluster starts; until then every node counts as up).
    pub fn set_liveness(&self, live: LiveFn) {
        let _ = self.live.set(live);
    }

    /// True if `node` is up (this node always is).
    pub fn is_live(&self, node: &str) -> bool {
        node == self.node || self.live.get().is_none_or(|f| f(node))
    }

    pub(crate) fn next_shadow_id(&self) -> SessionId {
        self.shadow_ids.fetch_add(1, Ordering::Relaxed)
    }

    /// The relay actor of `node`, if it is in the group (connected).
    pub(crate) fn peer(&self, node: &str) -> Option<ActorRef<RelayMsg>> {
        if node == self.node {
            return self.endpoint.get().cloned();
        }
        ractor::pg::get_scoped_members(&SCOPE.to_string(), &node.to_string())
            .into_iter()
            .next()
            .map(ActorRef::from)
    }

    /// Sends a session's request for a room owned by `owner`. `false` when
    /// the owner cannot be reached.
    pub(crate) fn up(
        &self,
        owner: &str,
        room: &str,
        out: &Outbound,
        role: Option<Role>,
        req: u32,
        msg: ClientMsg,
    ) -> bool {
        let Some(peer) = self.peer(owner) else {
            return false;
        };
        // Registered once per session (live input comes here per batch).
        crate::lock(&self.locals)
            .entry(out.session)
            .or_insert_with(|| out.downgrade());
        if req != 0 {
            crate::lock(&self.pending).insert((out.session, req), room.to_string());
        }
        peer.cast(RelayMsg::Up(Box::new(Up {
            from: self.node.clone(),
            session: out.session,
            user: out.user.clone(),
            device: out.device.clone(),
            role,
            req,
            msg,
        })))
        .is_ok()
    }

    /// Tells `owner` that a session's connection ended.
    pub(crate) fn gone(&self, owner: &str, session: SessionId, room: &str) {
        if let Some(peer) = self.peer(owner) {
            let _ = peer.cast(RelayMsg::Gone {
                from: self.node.clone(),
                session,
                room: room.to_string(),
            });
        }
    }

    /// Frames from an owner for sessions of this node: each frame into
    /// the queue of every session it lists, in order; then the closes.
    pub(crate) fn deliver(&self, down: Down) {
        let mut locals = crate::lock(&self.locals);
        let mut pending = crate::lock(&self.pending);
        for (frame, sessions) in down.groups {
            let reply = if pending.is_empty() {
                None
            } else {
                reply_id(&frame)
            };
            for session in sessions {
                if let Some(id) = reply {
                    pending.remove(&(session, id));
                }
                match locals.get(&session).and_then(Outbound::upgrade) {
                    Some(out) => out.control(frame.clone()),
                    None => {
                        locals.remove(&session);
                    }
                }
            }
        }
        for (session, code, reason) in down.closes {
            if let Some(out) = locals.get(&session).and_then(Outbound::upgrade) {
                out.kill(code, &reason);
            }
        }
    }
}

impl Relay {
    /// Answers every request sent up for `room` and not answered yet
    /// (`unavailable`: the owner went away first; the client retries with
    /// the same id, which the next owner answers as a duplicate if it was
    /// applied).
    pub(crate) fn fail_pending(&self, room: &str, owner: &str) {
        let failed: Vec<(SessionId, u32)> = {
            let mut pending = crate::lock(&self.pending);
            let keys: Vec<_> = pending
                .iter()
                .filter(|(_, r)| r.as_str() == room)
                .map(|(k, _)| *k)
                .collect();
            for k in &keys {
                pending.remove(k);
            }
            keys
        };
        let locals = crate::lock(&self.locals);
        for (session, req) in failed {
            if let Some(out) = locals.get(&session).and_then(Outbound::upgrade) {
                out.control(crate::outbound::err_frame(
                    req,
                    chalktalk_protocol::ErrorCode::Unavailable,
                    format!(
                        "room {room}: its node {owner} went away before answering; join again and retry with the same id"
                    ),
                ));
            }
        }
    }
}

/// The request id of an encoded `ok` or `err` frame (`None` for any other
/// frame), read from its first bytes without decoding it: a map whose
/// first entry is `t` = `ok`/`err` and whose second is `id` (the order the
/// server's encoder writes).
pub(crate) fn reply_id(f: &[u8]) -> Option<u32> {
    let rest = match f.first()? {
        0x80..=0x8f => &f[1..],
        0xde => f.get(3..)?,
        _ => return None,
    };
    let rest = rest.strip_prefix(&[0xa1, b't'])?;
    let rest = rest
        .strip_prefix(&[0xa2, b'o', b'k'])
        .or_else(|| rest.strip_prefix(&[0xa3, b'e', b'r', b'r']))?;
    let rest = rest.strip_prefix(&[0xa2, b'i', b'd'])?;
    match *rest.first()? {
        n @ 0x00..=0x7f => Some(u32::from(n)),
        0xcc => rest.get(1).map(|b| u32::from(*b)),
        0xcd => Some(u32::from(u16::from_be_bytes(
            rest.get(1..3)?.try_into().ok()?,
        ))),
        0xce => Some(u32::from_be_bytes(rest.get(1..5)?.try_into().ok()?)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use chalktalk_protocol::{ErrorCode, Reply, ServerFrame, encode};

    use super::reply_id;

    #[test]
    fn reply_ids_are_read_from_the_encoded_frames() {
        for id in [0u32, 1, 127, 128, 255, 256, 65_535, 65_536, u32::MAX] {
            let ok = encode(&ServerFrame::Ok {
                id,
                r: Reply::Ack { seq: 9, dup: false },
            });
            assert_eq!(reply_id(&ok), Some(id), "ok {id}");
            let err = encode(&ServerFrame::Err {
                id,
                code: ErrorCode::Invalid,
                msg: "no".into(),
            });
            assert_eq!(reply_id(&err), Some(id), "err {id}");
        }
        let other = encode(&ServerFrame::Resync {
            room: "r".into(),
            reason: "x".into(),
        });
        assert_eq!(reply_id(&other), None);
        assert_eq!(reply_id(&[]), None);
        assert_eq!(reply_id(&[0x82, 0xa1]), None);
    }
}

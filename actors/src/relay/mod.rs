//! Rooms and threads across nodes: a session on any node reaches a room or
//! chat thread owned by another node through this node's relay (below for
//! rooms; threads go the same way through [`thread_proxy::ThreadProxy`],
//! and their remote viewers are shadow connections of the thread).
//!
//! - On the edge node (where the client is connected), the directory hands
//!   the session a [`proxy::RoomProxy`] for a room whose lease another live
//!   node holds. It looks like the room to the session (same `RoomMsg`s),
//!   and sends each request up to the owner's relay as the client's own
//!   message ([`wire::Up`]).
//! - On the owner node, the relay's [`endpoint`] gives each remote member
//!   of a room a shadow connection: an [`Outbound`] *linked* to its edge
//!   node ([`link::Link`], one per edge node). The room knows the shadow
//!   as a member like any other, but hands each frame once per node: one
//!   message to the link listing that node's members ([`link::Fan`]).
//!   The link's downlink task ships what waits down to the edge node in
//!   batches ([`wire::Down`]) on a relay link of their own ([`stream`]),
//!   where the reader pushes each frame into the queues of the sessions it
//!   lists, under the frame's class (ephemeral: dropped for a full queue;
//!   durable: the session closed with 4008 and resumed).
//! - A proxy whose owner goes down, or whose room's lease moved, stops and
//!   tells its sessions to rejoin (`resync`); an owner drops the shadows of
//!   a node that went down (their presence grace starts).
//!
//! Relays find each other through ractor's process groups (scope
//! `chalktalk-relay`, one group per node name), across the cluster link,
//! which carries the requests up; frames come down on the relay links.

pub mod endpoint;
pub mod link;
pub mod proxy;
pub mod stream;
pub mod thread_proxy;
pub mod wire;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use chalktalk_protocol::{ClientMsg, Role};
use ractor::ActorRef;

use crate::outbound::{Conn, Outbound, SessionId};
pub use link::Class;
pub use wire::{Down, RelayMsg, Target, Up};

/// The process-group scope of relays.
pub const SCOPE: &str = "chalktalk-relay";

/// Whether a node is up (the cluster's failure detector).
pub type LiveFn = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// A session of this node that sent requests up through the relay.
struct Local {
    conn: Weak<Conn>,
    /// The owner nodes it sent requests to (a handful at most): closed
    /// when a relay link from one of them shows a gap.
    owners: Vec<String>,
}

/// This node's relay: what proxies and the endpoint share.
pub struct Relay {
    node: String,
    endpoint: OnceLock<ActorRef<RelayMsg>>,
    /// Sessions of this node that joined a room through a proxy, for the
    /// frames coming down.
    locals: Mutex<HashMap<SessionId, Local>>,
    live: OnceLock<LiveFn>,
    /// Opens relay links to other nodes (set by the cluster when it starts,
    /// before any other node is reached).
    opener: OnceLock<Arc<dyn stream::Opener>>,
    /// Per owner node: the relay link id and the seq of the next batch
    /// expected from it.
    inbound: Mutex<HashMap<String, (u64, u64)>>,
    /// Ids of shadow connections (high bit set: never a local session's).
    shadow_ids: AtomicU64,
    /// Requests sent up and not answered yet: (session, request id) →
    /// room or thread. A proxy that stops answers its own (see
    /// [`Relay::fail_pending`]).
    pending: Mutex<HashMap<(SessionId, u32), Target>>,
}

impl Relay {
    /// The relay of node `node` (the directory makes one per node).
    pub fn new(node: String) -> Arc<Relay> {
        Arc::new(Relay {
            node,
            endpoint: OnceLock::new(),
            locals: Mutex::new(HashMap::new()),
            live: OnceLock::new(),
            opener: OnceLock::new(),
            inbound: Mutex::new(HashMap::new()),
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

    /// Tells the relay how to open links to other nodes (set once, when
    /// the cluster starts).
    pub fn set_opener(&self, opener: Arc<dyn stream::Opener>) {
        let _ = self.opener.set(opener);
    }

    pub(crate) fn opener(&self) -> Option<&dyn stream::Opener> {
        self.opener.get().map(|o| o.as_ref())
    }

    /// True if `node` is up (this node always is).
    pub fn is_live(&self, node: &str) -> bool {
        node == self.node || self.live.get().is_none_or(|f| f(node))
    }

    pub(crate) fn next_shadow_id(&self) -> SessionId {
        self.shadow_ids.fetch_add(1, Ordering::Relaxed)
    }

    /// The node whose inbox actor writes `user`'s inbox: the highest
    /// rendezvous score of (node, user) among the nodes up that this node
    /// sees (itself included). Nodes agree as long as they see the same
    /// members; while they do not, two may write one inbox, which the
    /// store's seq check and the inbox's renumbering make safe.
    pub fn inbox_owner(&self, user: &str) -> String {
        self.rendezvous_owner(user)
    }

    /// The node up (this one included, as this node sees them) with the
    /// highest rendezvous score for `key`.
    pub fn rendezvous_owner(&self, key: &str) -> String {
        let mut best = (rendezvous(&self.node, key), self.node.clone());
        for node in ractor::pg::which_scoped_groups(&SCOPE.to_string()) {
            if node != self.node && self.is_live(&node) {
                let score = rendezvous(&node, key);
                if (score, &node) > (best.0, &best.1) {
                    best = (score, node);
                }
            }
        }
        best.1
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

    /// Sends a session's request for a room or thread owned by `owner`.
    /// `false` when the owner cannot be reached.
    pub(crate) fn up(
        &self,
        owner: &str,
        target: &Target,
        out: &Outbound,
        role: Option<Role>,
        req: u32,
        msg: ClientMsg,
    ) -> bool {
        let Some(peer) = self.peer(owner) else {
            return false;
        };
        self.register(owner, out);
        if req != 0 {
            crate::lock(&self.pending).insert((out.session, req), target.clone());
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

    /// Registers `out` as a session that sends requests to `owner` (once
    /// per session and owner; live input comes here per batch).
    pub(crate) fn register(&self, owner: &str, out: &Outbound) {
        let mut locals = crate::lock(&self.locals);
        let local = locals.entry(out.session).or_insert_with(|| Local {
            conn: out.downgrade(),
            owners: Vec::new(),
        });
        if !local.owners.iter().any(|o| o == owner) {
            local.owners.push(owner.to_string());
        }
    }

    /// Tells `owner` that a session's connection ended.
    pub(crate) fn gone(&self, owner: &str, session: SessionId, target: &Target) {
        if let Some(peer) = self.peer(owner) {
            let _ = peer.cast(RelayMsg::Gone {
                from: self.node.clone(),
                session,
                target: target.clone(),
            });
        }
    }

    /// Frames from an owner for sessions of this node: each frame into
    /// the queue of every session it lists, in order; then the closes.
    pub(crate) fn deliver(&self, down: Down) {
        let mut locals = crate::lock(&self.locals);
        let mut pending = crate::lock(&self.pending);
        for (frame, class, sessions) in down.groups {
            let reply = if pending.is_empty() {
                None
            } else {
                reply_id(&frame)
            };
            for session in sessions {
                if let Some(id) = reply {
                    pending.remove(&(session, id));
                }
                match locals
                    .get(&session)
                    .and_then(|l| Outbound::upgrade(&l.conn))
                {
                    Some(out) => match class {
                        Class::Ephemeral => {
                            out.ephemeral(&frame);
                        }
                        Class::Durable => out.control(frame.clone()),
                    },
                    None => {
                        locals.remove(&session);
                    }
                }
            }
        }
        for (session, code, reason) in down.closes {
            if let Some(out) = locals
                .get(&session)
                .and_then(|l| Outbound::upgrade(&l.conn))
            {
                out.kill(code, &reason);
            }
        }
    }

    /// Batch `seq` of relay link `link` from owner `from`: delivered. If
    /// it is not the next batch of a link already heard from (a batch was
    /// written and never arrived whole), every session of this node that
    /// sent requests to `from` is closed first (4008), so its client
    /// reconnects and resumes by seq. A batch of an older connection of
    /// the same link arriving late is dropped. The first batch of a link
    /// not heard from before starts it: what the owner could not ship
    /// before comes as the closes in the batch (`stream.rs`).
    pub fn arrive(&self, from: &str, link: u64, seq: u64, down: Down) {
        let gap = {
            let mut inbound = crate::lock(&self.inbound);
            match inbound.get_mut(from) {
                Some((l, next)) if *l == link => {
                    if seq < *next {
                        return;
                    }
                    let gap = seq != *next;
                    *next = seq + 1;
                    gap
                }
                _ => {
                    inbound.insert(from.to_string(), (link, seq + 1));
                    false
                }
            }
        };
        if gap {
            self.reset_from(from);
        }
        self.deliver(down);
    }

    /// Closes every session that sent requests to `owner`: what `owner`
    /// sent them may be lost.
    fn reset_from(&self, owner: &str) {
        crate::metrics::metrics().relay_link_resets.inc();
        let mut closed = 0usize;
        let mut locals = crate::lock(&self.locals);
        locals.retain(|_, l| {
            if !l.owners.iter().any(|o| o == owner) {
                return true;
            }
            if let Some(out) = Outbound::upgrade(&l.conn) {
                out.kill(
                    4008,
                    &format!("frames from node {owner} were lost; reconnect and resume"),
                );
                closed += 1;
            }
            false
        });
        tracing::warn!(%owner, sessions = closed, "relay: a gap in the link from an owner; its sessions here closed to resume");
    }
}

impl Relay {
    /// Answers every request sent up for `target` and not answered yet
    /// (`unavailable`: the owner went away first; the client retries with
    /// the same id, which the next owner answers as a duplicate if it was
    /// applied).
    pub(crate) fn fail_pending(&self, target: &Target, owner: &str) {
        let failed: Vec<(SessionId, u32)> = {
            let mut pending = crate::lock(&self.pending);
            let keys: Vec<_> = pending
                .iter()
                .filter(|(_, t)| *t == target)
                .map(|(k, _)| *k)
                .collect();
            for k in &keys {
                pending.remove(k);
            }
            keys
        };
        let locals = crate::lock(&self.locals);
        for (session, req) in failed {
            if let Some(out) = locals
                .get(&session)
                .and_then(|l| Outbound::upgrade(&l.conn))
            {
                out.control(crate::outbound::err_frame(
                    req,
                    chalktalk_protocol::ErrorCode::Unavailable,
                    format!(
                        "{target}: its node {owner} went away before answering; join or open it again and retry with the same id"
                    ),
                ));
            }
        }
    }
}

/// The rendezvous score of `node` for `key` (FNV-1a 64 over both, then a
/// final mix): the same on every node and every build.
pub fn rendezvous(node: &str, key: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in node.bytes().chain([0xff]).chain(key.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    // splitmix64's finalizer: spreads nearby inputs apart.
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
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
    fn rendezvous_spreads_users_over_nodes_and_moves_few_when_one_leaves() {
        use super::rendezvous;
        let pick = |nodes: &[&str], user: &str| -> String {
            nodes
                .iter()
                .max_by_key(|n| (rendezvous(n, user), n.to_string()))
                .map(|n| n.to_string())
                .unwrap_or_default()
        };
        let users: Vec<String> = (0..3000).map(|i| format!("user-{i}")).collect();
        let three = ["n1", "n2", "n3"];
        let mut per = std::collections::HashMap::new();
        for u in &users {
            *per.entry(pick(&three, u)).or_insert(0) += 1;
        }
        for n in three {
            let c = per.get(n).copied().unwrap_or(0);
            assert!((800..=1200).contains(&c), "{n} owns {c} of 3000");
        }
        // n3 leaves: only its users move.
        for u in &users {
            let before = pick(&three, u);
            let after = pick(&["n1", "n2"], u);
            if before != "n3" {
                assert_eq!(before, after, "{u} moved though its node stayed");
            }
        }
    }

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

//! The relay actor of a node: the owner side (requests from sessions of
//! other nodes for its rooms and threads, each remote member a shadow
//! connection of the room or thread) and the edge side (frames coming down
//! for this node's sessions).

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use chalktalk_protocol::{ClientMsg, ErrorCode, StrokeIn};
use ractor::Message;
use ractor::{Actor, ActorProcessingErr, ActorRef};

use super::link::{Item, Link, LinkRx};
use super::{Down, Relay, RelayMsg, SCOPE, Target, Up};
use crate::directory::Directory;
use crate::handle::{Handle, SendFail};
use crate::outbound::{Outbound, OutboundStats, SessionId, err_frame};
use crate::room::{LiveInput, RoomMsg};
use crate::supervisor::Lookup;
use crate::thread::ThreadMsg;

/// Frames (for all sessions of one node) shipped down in one message at
/// most.
const MAX_DOWN_BATCH: usize = 1024;
/// How long a downlink that owes closes to sessions that lost frames waits
/// for a batch to carry them before it sends one of its own.
const OWED_RETRY: Duration = Duration::from_millis(100);
/// How often shadows of nodes that went down are dropped.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

pub struct Endpoint;

pub struct EndpointArgs {
    pub relay: Arc<Relay>,
    pub dir: Weak<Directory>,
    pub stats: Arc<OutboundStats>,
}

/// (edge node, its session, room or thread) → the shadow connection
/// there.
type Shadows = HashMap<(String, SessionId, Target), Outbound>;

pub struct EndpointState {
    relay: Arc<Relay>,
    dir: Weak<Directory>,
    stats: Arc<OutboundStats>,
    shadows: Shadows,
    /// Per edge node: the link its shadows' frames go down through.
    downlinks: HashMap<String, Arc<Link>>,
}

impl Actor for Endpoint {
    type Msg = RelayMsg;
    type State = EndpointState;
    type Arguments = EndpointArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<RelayMsg>,
        args: EndpointArgs,
    ) -> Result<EndpointState, ActorProcessingErr> {
        ractor::pg::join_scoped(
            SCOPE.to_string(),
            args.relay.node().to_string(),
            vec![myself.get_cell()],
        );
        myself.send_interval(SWEEP_EVERY, || RelayMsg::Sweep);
        Ok(EndpointState {
            relay: args.relay,
            dir: args.dir,
            stats: args.stats,
            shadows: HashMap::new(),
            downlinks: HashMap::new(),
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<RelayMsg>,
        msg: RelayMsg,
        st: &mut EndpointState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            RelayMsg::Up(up) => st.up(*up).await,
            RelayMsg::Gone {
                from,
                session,
                target,
            } => {
                if let Some(out) = st.shadows.remove(&(from, session, target.clone())) {
                    st.disconnected(&target, &out).await;
                }
            }
            RelayMsg::Deliver { user, notice } => {
                if let Some(dir) = st.dir.upgrade() {
                    let _ = dir
                        .inbox()
                        .cast(crate::inbox::InboxMsg::DeliverHere { user, notice });
                }
            }
            RelayMsg::Inbox(events) => {
                if let Some(dir) = st.dir.upgrade() {
                    let _ = dir.inbox().cast(crate::inbox::InboxMsg::Remote(events));
                }
            }
            RelayMsg::InboxPush { user, frame } => {
                if let Some(dir) = st.dir.upgrade() {
                    let _ = dir
                        .inbox()
                        .cast(crate::inbox::InboxMsg::RemotePush { user, frame });
                }
            }
            RelayMsg::Sweep => st.sweep().await,
        }
        Ok(())
    }
}

/// The error a request gets when its room or thread cannot be found here.
fn lookup_fail(target: &Target, e: Lookup) -> (ErrorCode, String) {
    match e {
        Lookup::NotFound => (ErrorCode::NotFound, format!("no {target}")),
        Lookup::Unavailable(why) => (
            ErrorCode::Unavailable,
            format!("{target} unavailable: {why}"),
        ),
        Lookup::Elsewhere(owner) => (
            ErrorCode::Unavailable,
            format!("{target} moved to node {owner}; join or open it again"),
        ),
    }
}

/// Hands a relayed request to the local actor, answering the request when
/// the actor cannot take it.
fn hand<M: Message>(
    h: &Handle<M>,
    target: &Target,
    msg: M,
    ephemeral: bool,
    fail: impl Fn(ErrorCode, String),
) {
    match h.send(msg, ephemeral) {
        Ok(()) => {}
        Err((SendFail::Overloaded, _)) => fail(
            ErrorCode::Overloaded,
            format!("{target} is busy; retry with the same id"),
        ),
        Err((SendFail::Stopped, _)) => {
            fail(ErrorCode::Unavailable, format!("{target} restarted; retry"))
        }
    }
}

impl EndpointState {
    fn shadow(&mut self, up: &Up, target: &Target) -> Outbound {
        let key = (up.from.clone(), up.session, target.clone());
        if let Some(o) = self.shadows.get(&key) {
            return o.clone();
        }
        let link = match self.downlinks.get(&up.from) {
            Some(l) if !l.is_closed() => l.clone(),
            _ => {
                let (link, rx) = Link::new(up.from.clone());
                tokio::spawn(downlink(self.relay.clone(), up.from.clone(), rx));
                self.downlinks.insert(up.from.clone(), link.clone());
                link
            }
        };
        let out = Outbound::linked(
            self.relay.next_shadow_id(),
            up.user.clone(),
            up.device.clone(),
            self.stats.clone(),
            link,
            up.session,
        );
        self.shadows.insert(key, out.clone());
        out
    }

    async fn up(&mut self, up: Up) {
        let Some(target) = Target::of(&up.msg) else {
            tracing::warn!(from = %up.from, "relay: a request that is neither for a room nor a thread; dropped");
            return;
        };
        let out = self.shadow(&up, &target);
        let Some(dir) = self.dir.upgrade() else {
            return;
        };
        let req = up.req;
        let fail = |code: ErrorCode, msg: String| {
            if req != 0 {
                out.control(err_frame(req, code, msg));
            }
        };
        let key = (up.from.clone(), up.session, target.clone());
        match &target {
            Target::Room(room) => {
                let handle = match dir.local_room(room).await {
                    Ok(h) => h,
                    Err(e) => {
                        let (code, msg) = lookup_fail(&target, e);
                        fail(code, msg);
                        if matches!(up.msg, ClientMsg::JoinRoom { .. }) {
                            self.shadows.remove(&key);
                        }
                        return;
                    }
                };
                let leaving = matches!(up.msg, ClientMsg::LeaveRoom { .. });
                let Some(msg) = room_msg(&out, up.role, req, up.msg) else {
                    return fail(ErrorCode::Invalid, "an op without a role".into());
                };
                let ephemeral = matches!(msg, RoomMsg::Live { .. });
                hand(&handle, &target, msg, ephemeral, fail);
                if leaving {
                    self.shadows.remove(&key);
                }
            }
            Target::Thread(thread) => {
                let handle = match dir.local_thread(thread).await {
                    Ok(h) => h,
                    Err(e) => {
                        let (code, msg) = lookup_fail(&target, e);
                        fail(code, msg);
                        if matches!(up.msg, ClientMsg::OpenThread { .. }) {
                            self.shadows.remove(&key);
                        }
                        return;
                    }
                };
                let closing = matches!(up.msg, ClientMsg::CloseThread { .. });
                if let Ok(r) = crate::thread::route::from_client(&out, req, up.msg) {
                    hand(&handle, &target, r.msg, r.ephemeral, fail);
                }
                if closing {
                    self.shadows.remove(&key);
                }
            }
        }
    }

    async fn disconnected(&self, target: &Target, out: &Outbound) {
        let Some(dir) = self.dir.upgrade() else {
            return;
        };
        let session = out.session;
        match target {
            Target::Room(room) => {
                if let Ok(h) = dir.local_room(room).await {
                    let _ = h.actor.cast(RoomMsg::Disconnected { session });
                }
            }
            Target::Thread(thread) => {
                if let Ok(h) = dir.local_thread(thread).await {
                    let _ = h.actor.cast(ThreadMsg::Disconnected { session });
                }
            }
        }
    }

    /// Drops the shadows of nodes that are no longer up: their members'
    /// presence grace starts, as for a dropped connection.
    async fn sweep(&mut self) {
        let dead: Vec<_> = self
            .shadows
            .keys()
            .filter(|(node, _, _)| !self.relay.is_live(node))
            .cloned()
            .collect();
        for key in dead {
            if let Some(out) = self.shadows.remove(&key) {
                tracing::info!(node = %key.0, target = %key.2, "relay: member of a node that is down dropped");
                self.disconnected(&key.2, &out).await;
            }
        }
    }
}

/// The room request a relayed client message is (`None`: an op without
/// the role it is planned with).
fn room_msg(
    out: &Outbound,
    role: Option<chalktalk_protocol::Role>,
    req: u32,
    msg: ClientMsg,
) -> Option<RoomMsg> {
    let session = out.session;
    let out = out.clone();
    Some(match msg {
        ClientMsg::JoinRoom { since, .. } => RoomMsg::Join { out, req, since },
        ClientMsg::LeaveRoom { .. } => RoomMsg::Leave { out, req },
        ClientMsg::SnapshotPage { seq, page, .. } => RoomMsg::Page {
            out,
            req,
            seq,
            page,
        },
        ClientMsg::Op { op_id, op, .. } => RoomMsg::Op {
            out,
            role: role?,
            req,
            op_id,
            op,
        },
        ClientMsg::Points(StrokeIn { live, .. }) => RoomMsg::Live {
            session,
            input: LiveInput::Points(live),
        },
        ClientMsg::Pointer { at, .. } => RoomMsg::Live {
            session,
            input: LiveInput::Pointer(at),
        },
        ClientMsg::Activity { activity, .. } => RoomMsg::Live {
            session,
            input: LiveInput::Activity(activity),
        },
        // Not a room request: Target::of said it was.
        _ => return None,
    })
}

/// Ships what the rooms and threads of this node handed to one edge
/// node's link, batch after batch, each frame once however many of that
/// node's sessions it is for, on the relay link (`stream.rs`) the cluster
/// gave the relay the opener of (a relay exists only in a cluster, and the
/// cluster sets it before any other node is reached).
pub(crate) async fn downlink(relay: Arc<Relay>, node: String, mut rx: LinkRx) {
    let mut buf = Vec::with_capacity(64);
    let mut writer = super::stream::Writer::new(node.clone());
    loop {
        // Sessions that lost frames are told with the next batch; when
        // nothing else comes, an empty batch goes after a short wait, so a
        // room that fell quiet does not leave them missing its last frames.
        let n = if writer.owes() {
            match tokio::time::timeout(OWED_RETRY, rx.recv_many(&mut buf, MAX_DOWN_BATCH)).await {
                Ok(n) => n,
                Err(_) => {
                    if relay.is_live(&node) {
                        writer.ship(relay.opener(), &Down::default()).await;
                    } else {
                        writer.forget_losses();
                    }
                    continue;
                }
            }
        } else {
            rx.recv_many(&mut buf, MAX_DOWN_BATCH).await
        };
        if n == 0 {
            break;
        }
        // Let the other rooms and threads that are ready run first: what
        // they hand this node in the meantime crosses in the same batch
        // (a batch across the link costs far more than a frame in it).
        if buf.len() < MAX_DOWN_BATCH {
            tokio::task::yield_now().await;
            rx.try_more(&mut buf, MAX_DOWN_BATCH);
        }
        let down = group(buf.drain(..));
        writer.ship(relay.opener(), &down).await;
    }
}

/// One message of a batch of items. A frame handed to one session after
/// the same frame (the same bytes, as a thread's per-viewer sends are)
/// joins that group, unless the session is already in it: each session
/// keeps its order, since only the last group grows.
pub(crate) fn group(items: impl Iterator<Item = Item>) -> Down {
    let mut d = Down::default();
    for item in items {
        match item {
            Item::Group(b, class, sessions) => match d.groups.last_mut() {
                Some((f, c, ss))
                    if *c == class
                        && f.as_ptr() == b.as_ptr()
                        && f.len() == b.len()
                        && sessions.iter().all(|s| !ss.contains(s)) =>
                {
                    ss.extend(sessions);
                }
                _ => d.groups.push((b, class, sessions)),
            },
            Item::One(b, class, s) => match d.groups.last_mut() {
                Some((f, c, ss))
                    if *c == class
                        && f.as_ptr() == b.as_ptr()
                        && f.len() == b.len()
                        && !ss.contains(&s) =>
                {
                    ss.push(s);
                }
                _ => d.groups.push((b, class, vec![s])),
            },
            Item::Close(s, code, reason) => d.closes.push((s, code, reason)),
        }
    }
    d
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::relay::link::{Class, Item};

    #[test]
    fn a_frame_crosses_once_and_each_session_keeps_its_order() {
        let x = Bytes::from_static(b"broadcast");
        let y = Bytes::from(b"only-for-2".to_vec());
        let z = Bytes::from(b"after".to_vec());
        let d = Class::Durable;
        let e = Class::Ephemeral;
        let items = vec![
            // A room's broadcast to 1 and 2, then a thread's per-viewer
            // sends of one frame to 3 and 4.
            Item::Group(x.clone(), d, vec![1, 2]),
            Item::Group(y.clone(), d, vec![3]),
            Item::Group(y.clone(), d, vec![4]),
            // The same bytes again for 3: a new group, after.
            Item::Group(y.clone(), d, vec![3]),
            // Same bytes, other class: a new group.
            Item::Group(y.clone(), e, vec![5]),
            Item::Group(z.clone(), d, vec![1]),
            Item::Close(3, 4008, "slow".into()),
        ];
        let down = group(items.into_iter());
        assert_eq!(
            down.groups,
            vec![
                (x, d, vec![1, 2]),
                (y.clone(), d, vec![3, 4]),
                (y.clone(), d, vec![3]),
                (y, e, vec![5]),
                (z, d, vec![1]),
            ]
        );
        assert_eq!(down.closes, vec![(3, 4008, "slow".to_string())]);
    }
}

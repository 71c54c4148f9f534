//! The relay actor of a node: the owner side (requests from sessions of
//! other nodes, each remote member a shadow connection of the room) and the
//! edge side (frames coming down for this node's sessions).

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use chalktalk_protocol::{ClientMsg, ErrorCode, StrokeIn};
use ractor::{Actor, ActorProcessingErr, ActorRef};

use super::{Relay, RelayMsg, SCOPE, Up};
use crate::directory::Directory;
use crate::handle::SendFail;
use crate::outbound::{Out, Outbound, OutboundRx, OutboundStats, SessionId, err_frame};
use crate::room::{LiveInput, RoomMsg};
use crate::supervisor::Lookup;

/// Frames shipped down in one message at most.
const MAX_DOWN_BATCH: usize = 256;
/// How often shadows of nodes that went down are dropped.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

pub struct Endpoint;

pub struct EndpointArgs {
    pub relay: Arc<Relay>,
    pub dir: Weak<Directory>,
    pub stats: Arc<OutboundStats>,
}

/// (edge node, its session, room) → the shadow connection in that room.
type Shadows = HashMap<(String, SessionId, String), Outbound>;

pub struct EndpointState {
    relay: Arc<Relay>,
    dir: Weak<Directory>,
    stats: Arc<OutboundStats>,
    shadows: Shadows,
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
                room,
            } => {
                if let Some(out) = st.shadows.remove(&(from, session, room.clone())) {
                    st.disconnected(&room, &out).await;
                }
            }
            RelayMsg::Down {
                session,
                frames,
                close,
            } => st.relay.deliver(session, frames, close),
            RelayMsg::Sweep => st.sweep().await,
        }
        Ok(())
    }
}

/// The room a relayed request is for (`None`: not a room request).
fn room_of(m: &ClientMsg) -> Option<&str> {
    match m {
        ClientMsg::JoinRoom { room, .. }
        | ClientMsg::LeaveRoom { room }
        | ClientMsg::SnapshotPage { room, .. }
        | ClientMsg::Op { room, .. }
        | ClientMsg::Points(StrokeIn { room, .. })
        | ClientMsg::Pointer { room, .. }
        | ClientMsg::Activity { room, .. } => Some(room),
        _ => None,
    }
}

impl EndpointState {
    fn shadow(&mut self, up: &Up, room: &str) -> Outbound {
        let key = (up.from.clone(), up.session, room.to_string());
        if let Some(o) = self.shadows.get(&key) {
            return o.clone();
        }
        let (out, rx) = Outbound::new(
            self.relay.next_shadow_id(),
            up.user.clone(),
            up.device.clone(),
            self.stats.clone(),
        );
        tokio::spawn(forward(self.relay.clone(), up.from.clone(), up.session, rx));
        self.shadows.insert(key, out.clone());
        out
    }

    async fn up(&mut self, up: Up) {
        let Some(room) = room_of(&up.msg).map(str::to_string) else {
            tracing::warn!(from = %up.from, "relay: a request that is not for a room; dropped");
            return;
        };
        let out = self.shadow(&up, &room);
        let req = up.req;
        let fail = |out: &Outbound, code: ErrorCode, msg: String| {
            if req != 0 {
                out.control(err_frame(req, code, msg));
            }
        };
        let Some(dir) = self.dir.upgrade() else {
            return;
        };
        let handle = match dir.local_room(&room).await {
            Ok(h) => h,
            Err(e) => {
                let (code, msg) = match e {
                    Lookup::NotFound => (ErrorCode::NotFound, format!("no room {room}")),
                    Lookup::Unavailable(why) => (
                        ErrorCode::Unavailable,
                        format!("room {room} unavailable: {why}"),
                    ),
                    Lookup::Elsewhere(owner) => (
                        ErrorCode::Unavailable,
                        format!("room {room} moved to node {owner}; join it again"),
                    ),
                };
                fail(&out, code, msg);
                if matches!(up.msg, ClientMsg::JoinRoom { .. }) {
                    self.shadows.remove(&(up.from, up.session, room));
                }
                return;
            }
        };
        let leaving = matches!(up.msg, ClientMsg::LeaveRoom { .. });
        let session = out.session;
        let msg = match up.msg {
            ClientMsg::JoinRoom { since, .. } => RoomMsg::Join {
                out: out.clone(),
                req,
                since,
            },
            ClientMsg::LeaveRoom { .. } => RoomMsg::Leave {
                out: out.clone(),
                req,
            },
            ClientMsg::SnapshotPage { seq, page, .. } => RoomMsg::Page {
                out: out.clone(),
                req,
                seq,
                page,
            },
            ClientMsg::Op { op_id, op, .. } => match up.role {
                Some(role) => RoomMsg::Op {
                    out: out.clone(),
                    role,
                    req,
                    op_id,
                    op,
                },
                None => return fail(&out, ErrorCode::Invalid, "an op without a role".into()),
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
            _ => return,
        };
        let ephemeral = matches!(msg, RoomMsg::Live { .. });
        match handle.send(msg, ephemeral) {
            Ok(()) => {}
            Err((SendFail::Overloaded, _)) => fail(
                &out,
                ErrorCode::Overloaded,
                "the room is busy; retry with the same id".into(),
            ),
            Err((SendFail::Stopped, _)) => fail(
                &out,
                ErrorCode::Unavailable,
                format!("room {room} restarted; retry"),
            ),
        }
        if leaving {
            self.shadows.remove(&(up.from, up.session, room));
        }
    }

    async fn disconnected(&self, room: &str, out: &Outbound) {
        let Some(dir) = self.dir.upgrade() else {
            return;
        };
        if let Ok(h) = dir.local_room(room).await {
            let _ = h.actor.cast(RoomMsg::Disconnected {
                session: out.session,
            });
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
                tracing::info!(node = %key.0, room = %key.2, "relay: member of a node that is down dropped");
                self.disconnected(&key.2, &out).await;
            }
        }
    }
}

/// Ships what a shadow connection's room queued down to the edge node,
/// in batches, until the shadow is dropped or the node is unreachable
/// (then the queue closes and the room drops the member).
async fn forward(relay: Arc<Relay>, node: String, session: SessionId, mut rx: OutboundRx) {
    while let Some(first) = rx.recv().await {
        let mut frames: Vec<Bytes> = Vec::new();
        let mut close = None;
        let mut next = Some(first);
        while let Some(o) = next.take() {
            match o {
                Out::Frame(b) => frames.push(b),
                Out::Close(code, reason) => {
                    close = Some((code, reason));
                    break;
                }
            }
            if frames.len() < MAX_DOWN_BATCH {
                next = rx.try_recv();
            }
        }
        let closing = close.is_some();
        let Some(peer) = relay.peer(&node) else {
            break;
        };
        if peer
            .cast(RelayMsg::Down {
                session,
                frames,
                close,
            })
            .is_err()
            || closing
        {
            break;
        }
    }
}

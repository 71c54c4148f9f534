//! The stand-in of a room owned by another node: the edge node's sessions
//! talk to it as to the room (`RoomMsg`), and it sends each request up to
//! the owner's relay (the replies and events come down to the sessions'
//! own queues, not through here). It stops, and tells its sessions to
//! rejoin, when the owner goes down or the room's lease moves.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use bytes::Bytes;
use chalktalk_protocol::{ClientMsg, ErrorCode, ServerFrame, StrokeIn, encode};
use ractor::{Actor, ActorProcessingErr, ActorRef};

use super::{Relay, Target};
use crate::handle::handled;
use crate::lease::{LeaseKind, Placement};
use crate::outbound::{Outbound, SessionId, err_frame};
use crate::room::{LiveInput, RoomMsg};

pub struct RoomProxy;

pub struct ProxyArgs {
    pub room: String,
    pub owner: String,
    pub relay: Arc<Relay>,
    pub placement: Arc<Placement>,
    pub depth: Arc<AtomicUsize>,
}

pub struct ProxyState {
    room: String,
    target: Target,
    owner: String,
    relay: Arc<Relay>,
    placement: Arc<Placement>,
    depth: Arc<AtomicUsize>,
    sessions: HashMap<SessionId, Outbound>,
}

impl ProxyState {
    fn unreachable(&self, out: &Outbound, req: u32) {
        out.control(err_frame(
            req,
            ErrorCode::Unavailable,
            format!(
                "room {} is served by node {}, which cannot be reached; retry later",
                self.room, self.owner
            ),
        ));
    }

    /// Sends a request up; `false` (and the caller stops) when the owner
    /// is unreachable.
    fn up(
        &self,
        out: &Outbound,
        role: Option<chalktalk_protocol::Role>,
        req: u32,
        msg: ClientMsg,
    ) -> bool {
        if self
            .relay
            .up(&self.owner, &self.target, out, role, req, msg)
        {
            return true;
        }
        if req != 0 {
            self.unreachable(out, req);
        }
        false
    }
}

impl Actor for RoomProxy {
    type Msg = RoomMsg;
    type State = ProxyState;
    type Arguments = ProxyArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<RoomMsg>,
        a: ProxyArgs,
    ) -> Result<ProxyState, ActorProcessingErr> {
        tracing::debug!(room = %a.room, owner = %a.owner, "room proxy started");
        myself.send_interval(a.placement.ttl / 2, || RoomMsg::Renew);
        Ok(ProxyState {
            target: Target::Room(a.room.clone()),
            room: a.room,
            owner: a.owner,
            relay: a.relay,
            placement: a.placement,
            depth: a.depth,
            sessions: HashMap::new(),
        })
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<RoomMsg>,
        st: &mut ProxyState,
    ) -> Result<(), ActorProcessingErr> {
        st.relay.fail_pending(&st.target, &st.owner);
        let frame = Bytes::from(encode(&ServerFrame::Resync {
            room: st.room.clone(),
            reason: format!("room moved or its node {} went away", st.owner),
        }));
        for (_, out) in st.sessions.drain() {
            out.set_in_room(&st.room, false);
            out.control(frame.clone());
            crate::metrics::metrics().resyncs.inc();
        }
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<RoomMsg>,
        msg: RoomMsg,
        st: &mut ProxyState,
    ) -> Result<(), ActorProcessingErr> {
        if !matches!(msg, RoomMsg::Renew) {
            handled(&st.depth);
        }
        let room = st.room.clone();
        let ok = match msg {
            RoomMsg::Join { out, req, since } => {
                out.set_in_room(&room, true);
                st.sessions.insert(out.session, out.clone());
                st.up(&out, None, req, ClientMsg::JoinRoom { room, since })
            }
            RoomMsg::Leave { out, req } => {
                st.sessions.remove(&out.session);
                out.set_in_room(&room, false);
                st.up(&out, None, req, ClientMsg::LeaveRoom { room })
            }
            RoomMsg::Page {
                out,
                req,
                seq,
                page,
            } => st.up(&out, None, req, ClientMsg::SnapshotPage { room, seq, page }),
            RoomMsg::Op {
                out,
                role,
                req,
                op_id,
                op,
            } => st.up(&out, Some(role), req, ClientMsg::Op { room, op_id, op }),
            RoomMsg::Live { session, input } => match st.sessions.get(&session) {
                Some(out) => {
                    let msg = match input {
                        LiveInput::Points(live) => ClientMsg::Points(StrokeIn { room, live }),
                        LiveInput::Pointer(at) => ClientMsg::Pointer { room, at },
                        LiveInput::Activity(activity) => ClientMsg::Activity { room, activity },
                    };
                    st.up(out, None, 0, msg)
                }
                None => true,
            },
            RoomMsg::Disconnected { session } => {
                if st.sessions.remove(&session).is_some() {
                    st.relay.gone(&st.owner, session, &st.target);
                }
                true
            }
            RoomMsg::Renew => {
                // Still the owner's, and the owner still up?
                let live = st.relay.is_live(&st.owner);
                let holder = st.placement.leases.holder(LeaseKind::Room, &room).await;
                match holder {
                    _ if !live => false,
                    Ok(Some(l)) if l.owner == st.owner && l.expires_ms > crate::now_ms() => true,
                    Ok(_) => false,
                    // The store cannot say: keep going while the owner is up.
                    Err(_) => true,
                }
            }
            // Media progress reaches the rooms of the node processing the
            // upload; debug panics and the room's internal messages are
            // not for a proxy.
            _ => true,
        };
        if !ok {
            tracing::info!(room = %st.room, owner = %st.owner, "room proxy stopping: the owner is gone or the room moved");
            myself.stop(Some("owner gone".into()));
        }
        Ok(())
    }
}
